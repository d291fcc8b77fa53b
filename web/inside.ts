/**
 * Inside the network, drawn: each layer's output for one image (a convolution's channels as a
 * grid of small images, a vector as a bar strip, the probabilities as bars), the first layer's
 * filters as images, and each layer's weights as a histogram. The numbers come from the
 * library (src/inference/inside.ts); this file only draws them. Each layer is one canvas, so a
 * redraw costs a few putImageData calls however many channels there are.
 */
import { pixelExamples } from '../src/data/dataset.ts';
import { NUM_CLASSES } from '../src/data/idx.ts';
import { CLASS_NAMES } from '../src/data/manifest.ts';
import { firstLayerFilters, layerOutputs, weightHistograms, type WeightHistogram } from '../src/inference/inside.ts';
import type { InsideLayer } from '../src/inference/model-classifier.ts';
import { jsKernels } from '../src/kernels/js.ts';
import { modelFromWeights } from '../src/models/model-format.ts';
import { RUN_FILES } from '../src/runs/run-files.ts';
import { Sequential } from '../src/models/sequential.ts';
import { byId, element } from './dom.ts';
import { modelFilesOf, pageKernels, type PageModel } from './engine.ts';
import type { AppState } from './state.ts';

/** Each tile of a grid is drawn at about this many CSS pixels (28x28 images at twice their size, 3x3 filters at 16 times). */
const TILE_PIXELS = 56;
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

/** The histograms' size in canvas pixels: one bar of 4 pixels per bin. */
const HISTOGRAM_HEIGHT = 48;

/**
 * Every layer's weights as a histogram, one small canvas each (cheap enough to redraw with
 * every snapshot of the weights), captioned with the layer, the count and the range.
 */
export function drawHistograms(container: HTMLElement, histograms: WeightHistogram[]): void {
  const figures = histograms.map((h) => {
    const bins = h.counts.length;
    const canvas = element('canvas', { role: 'img', class: 'histogram', 'aria-label': `histogram of the ${h.count} weights of layer ${h.layer} (${h.type}), from ${h.min.toFixed(3)} to ${h.max.toFixed(3)}` });
    canvas.width = bins * 4;
    canvas.height = HISTOGRAM_HEIGHT;
    const context = canvas.getContext('2d');
    if (context !== null) {
      context.fillStyle = '#f6f8fa';
      context.fillRect(0, 0, canvas.width, canvas.height);
      const most = Math.max(1, ...h.counts);
      context.fillStyle = BAR_COLOUR;
      h.counts.forEach((count, b) => {
        const height = Math.round((count / most) * HISTOGRAM_HEIGHT);
        context.fillRect(b * 4, HISTOGRAM_HEIGHT - height, 3, height);
      });
      // Where 0 falls, for weights on both sides of it.
      if (h.min < 0 && h.max > 0) {
        context.fillStyle = '#8a4b00';
        context.fillRect(Math.round(((0 - h.min) / (h.max - h.min)) * canvas.width), 0, 1, HISTOGRAM_HEIGHT);
      }
    }
    return element(
      'figure',
      { class: 'layer', 'data-layer': String(h.layer) },
      element('figcaption', { text: `layer ${h.layer} ${h.type}: ${h.count.toLocaleString('en-US')} weights` }),
      canvas,
      element('div', { class: 'range' }, element('span', { text: h.min.toFixed(3) }), element('span', { text: h.max.toFixed(3) })),
    );
  });
  container.replaceChildren(...figures);
}

/** The Inside tab's models: a loaded model's weights, read once from its files (on the plain kernels: only their values are read). */
interface Weights {
  model: Sequential;
  values: Float32Array;
}

/** What the first layer's filters are, in words. */
const filterWords = (model: Sequential) => (model.layers.find((layer) => layer.parameters.length > 0)?.spec.type === 'conv2d' ? 'filters of the first convolution' : 'hidden units\' weights on the 784 pixels');

/**
 * The Inside tab: for the image Try shows (drawn, uploaded, from the camera or the test set),
 * each layer's output under the chosen model, and that model's first-layer filters and weight
 * histograms. The model may be one of the page's, or the run the worker is training: then the
 * weights it sends every few hundred steps are drawn as they come (the worker sends them only
 * while this tab is shown).
 */
export class InsideTab {
  private readonly select = byId<HTMLSelectElement>('inside-model');
  private readonly status = byId('inside-status');
  private readonly weightsStatus = byId('weights-status');
  private readonly layers = byId('inside-layers');
  private readonly filters = byId('inside-filters');
  private readonly histograms = byId('inside-weights');
  private visible = false;
  /** A redraw is under way; `again` asks for one more after it (new weights or a new image came meanwhile). */
  private drawing = false;
  private again = false;
  /** The page's copy of the model being trained (its layers; the weights are written in at each redraw). */
  private live: { key: string; model: Sequential } | null = null;
  /** Loaded models' weights by id, read once. */
  private readonly weights = new Map<string, Weights>();
  /** Redraws done, for the tests and the benchmark (data-redraws on the panel). */
  private redraws = 0;

  constructor(private readonly state: AppState) {
    this.select.addEventListener('change', () => this.redraw());
    state.onChange(() => this.refreshList());
    state.onImage(() => this.redraw());
    state.onLive(() => {
      const live = state.live;
      // A run that starts is shown: what the person most likely came to see.
      if (live !== null && live.values === null && live.training) {
        this.refreshList();
        this.select.value = 'live';
      } else this.refreshList();
      if (this.select.value === 'live') this.redraw();
    });
    this.refreshList();
  }

  /** Whether the tab is on screen; it draws only then. */
  setVisible(visible: boolean): void {
    this.visible = visible;
    if (visible) this.redraw();
  }

  private refreshList(): void {
    const current = this.select.value;
    const options = this.state.models.map((model) => element('option', { value: model.id, text: model.label }));
    const live = this.state.live;
    if (live !== null) options.unshift(element('option', { value: 'live', text: `${live.title} (${live.training ? 'training now' : 'as last trained'})` }));
    this.select.replaceChildren(...options);
    if ([...this.select.options].some((option) => option.value === current)) this.select.value = current;
    for (const id of [...this.weights.keys()]) {
      if (!this.state.models.some((model) => model.id === id)) {
        this.weights.get(id)?.model.dispose();
        this.weights.delete(id);
      }
    }
  }

  /** Redraws now, or once the redraw under way ends. */
  redraw(): void {
    if (!this.visible) return;
    if (this.drawing) {
      this.again = true;
      return;
    }
    this.drawing = true;
    void (async () => {
      try {
        do {
          this.again = false;
          await this.draw();
        } while (this.again);
      } catch (error) {
        this.status.textContent = `Could not look inside: ${error instanceof Error ? error.message : String(error)}`;
      } finally {
        this.drawing = false;
      }
    })();
  }

  /** The loaded model's weights, read from its files once. */
  private weightsOf(model: PageModel): Weights {
    let weights = this.weights.get(model.id);
    if (weights === undefined) {
      const { description, weights: bytes } = modelFilesOf(model.files, `${model.label}/`);
      const sequential = modelFromWeights(description, bytes, jsKernels, { dir: model.label, weightsPath: `${model.label}/${RUN_FILES.weights}` });
      weights = { model: sequential, values: sequential.values as Float32Array };
      this.weights.set(model.id, weights);
    }
    return weights;
  }

  private async draw(): Promise<void> {
    const image = this.state.image;
    const chosen = this.select.value;
    let weights: Weights;
    let layers: InsideLayer[] | null = null;
    let title: string;
    if (chosen === 'live') {
      const live = this.state.live;
      if (live === null || live.values === null) {
        this.weightsStatus.textContent = 'The training run\'s first weights come after its first few hundred steps.';
        return;
      }
      const kernels = await pageKernels('wasm');
      const key = JSON.stringify(live.architecture);
      if (this.live?.key !== key) {
        this.live?.model.dispose();
        this.live = { key, model: new Sequential(kernels, live.architecture) };
      }
      const model = this.live.model;
      model.writeValues(live.values);
      weights = { model, values: live.values };
      title = `${live.title}, after ${live.step.toLocaleString('en-US')} steps (epoch ${live.epoch})`;
      if (image !== null) layers = (await layerOutputs(kernels, model, pixelExamples({ count: 1, pixels: image.pixels, labels: new Uint8Array(1) }))).map((layer) => ({ ...layer, network: 'model' as const }));
    } else {
      const model = this.state.models.find((m) => m.id === chosen);
      if (model === undefined) {
        this.status.textContent = 'No model yet: train one, bring one in Models, or start the app with --model DIR.';
        return;
      }
      weights = this.weightsOf(model);
      title = model.label;
      if (image !== null) layers = await model.inside(image.pixels);
    }
    if (image === null || layers === null) {
      this.status.textContent = 'Draw, upload, use the camera or pick a test image in Try; each layer\'s output for it appears here.';
      this.layers.replaceChildren();
    } else {
      this.status.textContent = `${image.what}, through ${title}: each layer's output (ReLU and pooling; white is the layer's largest value).`;
      drawLayers(this.layers, image.pixels, layers, CLASS_NAMES);
    }
    this.weightsStatus.textContent = `${title}: the first layer's filters (grey 0, white positive, black negative) and each layer's weights.`;
    drawFilters(this.filters, firstLayerFilters(weights.model, weights.values), filterWords(weights.model));
    drawHistograms(this.histograms, weightHistograms(weights.model, weights.values));
    byId('panel-inside').dataset.redraws = String(++this.redraws);
  }
}
