/**
 * Inside the network, drawn: each layer's output for one image (a convolution's channels as a
 * grid of small images, a vector as a bar strip, the probabilities as bars), the first layer's
 * filters as images, and each layer's weights as a histogram. The numbers come from the
 * library (src/inference/inside.ts); this file only draws them. Each layer is one canvas, so a
 * redraw costs a few putImageData calls however many channels there are.
 */
import type { TopLevelSpec } from 'vega-lite';
import type { Result } from 'vega-embed';
import { NUM_CLASSES } from '../src/data/idx.ts';
import type { WeightHistogram } from '../src/inference/inside.ts';
import type { InsideLayer } from '../src/inference/model-classifier.ts';
import { CONFIG, embedChart, SCHEMA } from './charts.ts';
import { element } from './dom.ts';

/** Each tile of a grid is drawn at about this many CSS pixels. */
const TILE_PIXELS = 30;
/** Histogram bars' colour: the charts' training blue. */
const BAR_COLOUR = '#4c78a8';

/**
 * `tiles` square images of `side` x `side` values in one canvas, `columns` to a row with a
 * pixel's gap, each value mapped to grey by `shade` (0..255).
 */
function tileCanvas(tiles: number, side: number, value: (tile: number, pixel: number) => number, shade: (v: number) => number, label: string, columns = Math.min(tiles, Math.max(4, Math.ceil(Math.sqrt(tiles * 2))))): HTMLCanvasElement {
  const rows = Math.ceil(tiles / columns);
  const width = columns * (side + 1) - 1;
  const height = rows * (side + 1) - 1;
  const canvas = element('canvas', { role: 'img', 'aria-label': label, class: 'tiles' });
  canvas.width = width;
  canvas.height = height;
  const scale = Math.max(1, Math.round(TILE_PIXELS / side));
  canvas.style.width = `${width * scale}px`;
  const context = canvas.getContext('2d');
  if (context === null) return canvas;
  const image = context.createImageData(width, height);
  // The gaps: the page's light grey.
  for (let i = 0; i < image.data.length; i += 4) image.data.set([225, 228, 232, 255], i);
  for (let t = 0; t < tiles; t++) {
    const x0 = (t % columns) * (side + 1);
    const y0 = Math.floor(t / columns) * (side + 1);
    for (let p = 0; p < side * side; p++) {
      const v = Math.max(0, Math.min(255, Math.round(shade(value(t, p)))));
      image.data.set([v, v, v, 255], ((y0 + Math.floor(p / side)) * width + x0 + (p % side)) * 4);
    }
  }
  context.putImageData(image, 0, 0);
  return canvas;
}

/** A vector as a strip of bars, each unit's height its value over the largest. */
function barStrip(values: Float32Array, label: string): HTMLCanvasElement {
  const height = 28;
  const barWidth = values.length > 200 ? 1 : 2;
  const canvas = element('canvas', { role: 'img', 'aria-label': label, class: 'strip' });
  canvas.width = values.length * barWidth;
  canvas.height = height;
  const context = canvas.getContext('2d');
  if (context === null) return canvas;
  context.fillStyle = '#f6f8fa';
  context.fillRect(0, 0, canvas.width, height);
  const max = Math.max(1e-12, ...Array.from(values, Math.abs));
  context.fillStyle = BAR_COLOUR;
  values.forEach((v, i) => {
    const h = Math.round((Math.abs(v) / max) * height);
    context.fillRect(i * barWidth, height - h, barWidth, h);
  });
  return canvas;
}

const softmax = (logits: Float32Array) => {
  const max = Math.max(...logits);
  const exps = Array.from(logits, (v) => Math.exp(v - max));
  const sum = exps.reduce((a, b) => a + b, 0);
  return exps.map((e) => e / sum);
};

/** What a layer is, in words, for its caption: "conv 2 + ReLU: 32 channels of 28x28". */
function caption(layer: InsideLayer, counts: Map<string, number>, isLast: boolean, isFeatures: boolean): string {
  const [h, w, c] = layer.shape;
  const what = layer.shape.length === 3 ? `${c} channels of ${h}x${w}` : `${layer.shape[0]} units`;
  if (isLast) return 'probabilities';
  if (layer.type === 'maxpool2d') {
    const n = (counts.get('pool') ?? 0) + 1;
    counts.set('pool', n);
    return `pool ${n}: ${what}`;
  }
  if (layer.shape.length === 3) {
    const n = (counts.get('conv') ?? 0) + 1;
    counts.set('conv', n);
    return `conv ${n} + ReLU: ${what}`;
  }
  return `${isFeatures ? 'features' : 'dense'} + ReLU: ${what}`;
}

/**
 * Draws each layer's output for one image into `container`: the image, every ReLU's output (a
 * convolution's channels or a dense layer's units) and every pooling's, and the probabilities.
 * A layer's images share one scale (its largest value is white), so channels compare.
 */
export function drawLayers(container: HTMLElement, pixels: Uint8Array, layers: InsideLayer[], classNames: readonly string[]): void {
  const figures: HTMLElement[] = [];
  const figure = (title: string, body: HTMLElement, index: string) => element('figure', { class: 'layer', 'data-layer': index }, element('figcaption', { text: title }), body);
  figures.push(figure('input: 28x28', tileCanvas(1, 28, (_, p) => pixels[p], (v) => v, 'the input image'), 'input'));
  const counts = new Map<string, number>();
  const last = layers[layers.length - 1];
  // An MLP on features: the extractor's last layer is the features it takes.
  const featureIndex = layers.filter((layer) => layer.network === 'extractor').length - 1;
  layers.forEach((layer, i) => {
    const isLast = layer === last;
    if (!isLast && layer.type !== 'relu' && layer.type !== 'maxpool2d') return;
    const title = caption(layer, counts, isLast, i === featureIndex);
    const index = `${layer.network}:${layer.index}`;
    if (isLast) {
      const probabilities = softmax(layer.values.subarray(0, NUM_CLASSES));
      const rows = probabilities.map((p, c) =>
        element('div', { class: 'probability' }, element('span', { text: classNames[c] }), element('span', { class: 'bar', style: `width: ${(p * 100).toFixed(1)}%` }), element('span', { text: `${(p * 100).toFixed(1)}%` })),
      );
      figures.push(figure(title, element('div', { class: 'probabilities' }, ...rows), index));
    } else if (layer.shape.length === 3) {
      const [h, w, c] = layer.shape;
      let max = 1e-12;
      for (const v of layer.values) if (v > max) max = v;
      // The network's images are square (28, 14, 7, 3 pixels a side).
      figures.push(figure(title, tileCanvas(c, Math.max(h, w), (t, p) => layer.values[p * c + t], (v) => (255 * v) / max, title), index));
    } else {
      figures.push(figure(title, barStrip(layer.values, title), index));
    }
  });
  container.replaceChildren(...figures);
}

/** Filters as images: grey is 0, white the filter's largest positive weight, black its most negative. */
export function drawFilters(container: HTMLElement, filters: { side: number; filters: Float32Array[] } | null, what: string): void {
  if (filters === null) {
    container.replaceChildren(element('p', { class: 'note', text: 'This model\'s first layer has no filters to draw.' }));
    return;
  }
  const { side, filters: list } = filters;
  const scales = list.map((filter) => Math.max(1e-12, ...Array.from(filter, Math.abs)));
  const canvas = tileCanvas(list.length, side, (t, p) => list[t][p] / scales[t], (v) => 128 + 127 * v, `${list.length} ${what}`, side > 8 ? Math.min(list.length, 8) : Math.min(list.length, 16));
  container.replaceChildren(element('figure', { class: 'layer' }, element('figcaption', { text: `${list.length} ${what}` }), canvas));
}

/** Every layer's weights as a histogram (one small chart each), redrawn with new weights as they come. */
export class WeightHistograms {
  private result: Promise<Result> | null = null;
  private layers = '';

  constructor(private readonly element: HTMLElement) {}

  private static spec(): TopLevelSpec {
    return {
      $schema: SCHEMA,
      config: { ...CONFIG, axis: { labelFontSize: 9, titleFontSize: 10 }, header: { labelFontSize: 10, title: null } },
      data: { name: 'bins' },
      facet: { field: 'layer', type: 'nominal', sort: null, title: null },
      columns: 4,
      spec: {
        width: 130,
        height: 60,
        mark: { type: 'bar', color: BAR_COLOUR },
        encoding: {
          x: { field: 'from', type: 'quantitative', title: 'weight', axis: { tickCount: 3 } },
          x2: { field: 'to' },
          y: { field: 'count', type: 'quantitative', title: null, axis: { tickCount: 2 } },
          tooltip: [
            { field: 'layer', type: 'nominal' },
            { field: 'from', type: 'quantitative', format: '.3f' },
            { field: 'to', type: 'quantitative', format: '.3f' },
            { field: 'count', type: 'quantitative' },
          ],
        },
      },
      resolve: { scale: { x: 'independent', y: 'independent' } },
    } as TopLevelSpec;
  }

  show(histograms: WeightHistogram[]): Promise<void> {
    const rows = histograms.flatMap((h) => {
      const width = h.max > h.min ? (h.max - h.min) / h.counts.length : 1;
      const layer = `layer ${h.layer} ${h.type} (${h.count.toLocaleString('en-US')})`;
      return h.counts.map((count, b) => ({ layer, from: h.min + b * width, to: h.min + (b + 1) * width, count }));
    });
    const layers = histograms.map((h) => h.name).join();
    if (this.result === null || layers !== this.layers) {
      // A new model: a new chart (the facets follow the layers).
      const previous = this.result;
      this.layers = layers;
      this.result = (previous ?? Promise.resolve(null)).then((old) => {
        old?.finalize();
        return embedChart(this.element, WeightHistograms.spec(), 'histogram of each layer\'s weights');
      });
    }
    return this.result.then(async (result) => {
      await result.view.data('bins', rows).runAsync();
    });
  }
}
