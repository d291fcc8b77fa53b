/**
 * The page's charts: Vega-Lite specifications embedded with vega-embed (SVG, with tooltips).
 * The run charts are the report's own specifications (src/reports/charts.ts); the live curves
 * and the probability bars are the page's, fed new data as it comes.
 */
import embed, { type Result } from 'vega-embed';
import type { TopLevelSpec } from 'vega-lite';
import { CHART_FONT, learningRateMarkerLayers, type LearningRateMarker } from '../src/reports/charts.ts';

export const SCHEMA = 'https://vega.github.io/schema/vega-lite/v6.json';
export const CONFIG = {
  font: `${CHART_FONT}, Verdana, sans-serif`,
  view: { stroke: null },
  axis: { labelFontSize: 11, titleFontSize: 12 },
  legend: { labelFontSize: 11, titleFontSize: 12, orient: 'bottom' as const },
  title: { fontSize: 14, anchor: 'start' as const },
};
const COLOURS = { training: '#4c78a8', validation: '#f58518' };
/** Vega's log level that reports errors only. */
const LOG_ERRORS = 1;

/** Embeds `spec` into `element` as SVG, with tooltips and without the actions menu. */
export async function embedChart(element: HTMLElement, spec: TopLevelSpec, label: string): Promise<Result> {
  // Warnings stay quiet: a live chart starts with no data, which Vega warns about.
  const result = await embed(element, spec, { renderer: 'svg', actions: false, tooltip: { theme: 'light' }, logLevel: LOG_ERRORS });
  // vega-embed marks the box as a graphics document; its name says what the chart shows.
  element.setAttribute('aria-label', label);
  return result;
}

/** A report chart as the page shows it: as wide as its box, each mark telling its values on hover. */
export function forPage(spec: TopLevelSpec, width: number | 'container' = 'container'): TopLevelSpec {
  const sized = width === 'container' ? { width, autosize: { type: 'fit-x' as const, contains: 'padding' as const } } : { width, height: width };
  return { ...spec, ...sized, config: { ...(spec.config ?? {}), legend: { orient: 'bottom' }, mark: { tooltip: true } } } as TopLevelSpec;
}

/** One point of a live curve: `epoch` fractional for the training's running mean, whole for validation. */
export interface CurvePoint {
  epoch: number;
  set: 'training' | 'validation';
  value: number;
}

/**
 * Training (the running mean over the epoch so far) and validation (after each epoch) loss or
 * accuracy, as points arrive, with a marker where the learning rate was changed.
 */
function liveCurveSpec(what: 'loss' | 'accuracy', epochs: number): TopLevelSpec {
  const y = {
    field: 'value',
    type: 'quantitative' as const,
    title: what === 'loss' ? 'cross-entropy loss' : 'accuracy',
    scale: { zero: false },
    axis: what === 'accuracy' ? { format: '.0%' } : {},
  };
  const x = { field: 'epoch', type: 'quantitative' as const, title: 'epoch', scale: { domain: [0, epochs] }, axis: { tickMinStep: 1, format: 'd' } };
  const color = { field: 'set', type: 'nominal' as const, title: null, scale: { domain: ['training', 'validation'], range: [COLOURS.training, COLOURS.validation] } };
  const tooltip = [
    { field: 'set', type: 'nominal' as const },
    { field: 'epoch', type: 'quantitative' as const, format: '.2f' },
    { field: 'value', type: 'quantitative' as const, format: what === 'loss' ? '.4f' : '.2%' },
  ];
  const curve = { x, y, color, tooltip };
  return {
    $schema: SCHEMA,
    title: what === 'loss' ? 'Loss' : 'Accuracy',
    width: 'container',
    height: 200,
    autosize: { type: 'fit-x', contains: 'padding' },
    config: CONFIG,
    layer: [
      { data: { name: 'points' }, transform: [{ filter: "datum.set === 'training'" }], mark: { type: 'line', strokeWidth: 1.5 }, encoding: curve },
      { data: { name: 'points' }, transform: [{ filter: "datum.set === 'validation'" }], mark: { type: 'line', point: { size: 40 } }, encoding: curve },
      ...learningRateMarkerLayers({ name: 'changes' }),
    ],
  } as TopLevelSpec;
}

/** A live curve: points are added as training goes; `reset` starts it again (a new run, or a resumed one with its history). */
export class LiveCurve {
  private result: Promise<Result>;

  constructor(
    private readonly element: HTMLElement,
    private readonly what: 'loss' | 'accuracy',
  ) {
    this.result = this.draw(1);
  }

  private draw(epochs: number): Promise<Result> {
    return embedChart(this.element, liveCurveSpec(this.what, epochs), `${this.what} per epoch, training and validation`);
  }

  reset(epochs: number, points: CurvePoint[] = [], markers: LearningRateMarker[] = []): void {
    const previous = this.result;
    this.result = previous.then((result) => {
      result.finalize();
      return this.draw(epochs);
    });
    this.add(points);
    this.mark(markers);
  }

  add(points: CurvePoint[]): void {
    if (points.length === 0) return;
    void this.result.then((result) => result.view.insert('points', points).runAsync());
  }

  /** Marks learning-rate changes. */
  mark(markers: LearningRateMarker[]): void {
    if (markers.length === 0) return;
    void this.result.then((result) => result.view.insert('changes', markers).runAsync());
  }
}

/** The probability bars: each class's probability under each loaded model. */
function probabilitySpec(classNames: readonly string[]): TopLevelSpec {
  return {
    $schema: SCHEMA,
    width: 'container',
    height: { step: 22 },
    autosize: { type: 'fit-x', contains: 'padding' },
    config: CONFIG,
    data: { name: 'probabilities' },
    encoding: {
      y: { field: 'class', type: 'nominal', sort: [...classNames], title: null },
      x: { field: 'probability', type: 'quantitative', title: 'probability', scale: { domain: [0, 1] }, axis: { format: '.0%' } },
      yOffset: { field: 'model', type: 'nominal' },
      color: { field: 'model', type: 'nominal', title: 'model', legend: { orient: 'bottom', columns: 1 } },
      tooltip: [
        { field: 'model', type: 'nominal' },
        { field: 'class', type: 'nominal' },
        { field: 'probability', type: 'quantitative', format: '.1%' },
      ],
    },
    mark: { type: 'bar' },
  };
}

/** One bar: a model's probability of a class. */
export interface ProbabilityRow {
  model: string;
  class: string;
  probability: number;
}

/**
 * The probability bars, as wide as their box. The chart is embedded once its box has a width
 * (the Try tab may be hidden when the first answers come) and again when the width changes.
 */
export class ProbabilityBars {
  private result: Promise<Result> | null = null;
  private width = 0;
  private rows: ProbabilityRow[] = [];

  constructor(
    private readonly element: HTMLElement,
    private readonly classNames: readonly string[],
  ) {}

  show(rows: ProbabilityRow[]): Promise<void> {
    this.rows = rows;
    const width = this.element.clientWidth;
    if (width === 0) return Promise.resolve();
    if (this.result === null || width !== this.width) {
      const previous = this.result;
      this.width = width;
      this.result = (previous ?? Promise.resolve(null)).then((old) => {
        old?.finalize();
        return embedChart(this.element, probabilitySpec(this.classNames), 'probability of each class under each loaded model');
      });
    }
    return this.result.then(async (result) => {
      await result.view.data('probabilities', this.rows).runAsync();
    });
  }

  /** Draws the last rows again (the box is shown, or its width changed). */
  redraw(): Promise<void> {
    return this.show(this.rows);
  }
}
