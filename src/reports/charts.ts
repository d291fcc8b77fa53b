import type { TopLevelSpec } from 'vega-lite';
import type { ConfusionMatrix } from '../evaluation/metrics.ts';
import type { EpochRecord } from '../training/fit.ts';

/**
 * Vega-Lite specifications of the report's charts. Each takes plain figures from a run folder
 * and returns a spec that render.ts turns into SVG and PNG (and the web app embeds in the page
 * with vega-embed); nothing here draws.
 */

/** The charts' font: Debian's fonts-dejavu-core, with the browser's sans-serif as a fallback. */
export const CHART_FONT = 'DejaVu Sans';

const CONFIG = {
  font: `${CHART_FONT}, Verdana, sans-serif`,
  view: { stroke: null },
  axis: { labelFontSize: 11, titleFontSize: 12 },
  legend: { labelFontSize: 11, titleFontSize: 12 },
  title: { fontSize: 14, anchor: 'start' as const },
};

const SCHEMA = 'https://vega.github.io/schema/vega-lite/v6.json';

/** Training and validation loss (or accuracy) per epoch, with the best epoch marked. */
export function curveSpec(history: EpochRecord[], bestEpoch: number, what: 'loss' | 'accuracy', title: string): TopLevelSpec {
  const changes = learningRateMarkers(history);
  const values = history.flatMap((record) =>
    what === 'loss'
      ? [
          { epoch: record.epoch, set: 'training', value: record.trainLoss },
          { epoch: record.epoch, set: 'validation', value: record.valLoss },
        ]
      : [
          { epoch: record.epoch, set: 'training', value: record.trainAccuracy },
          { epoch: record.epoch, set: 'validation', value: record.valAccuracy },
        ],
  );
  return {
    $schema: SCHEMA,
    title,
    width: 360,
    height: 220,
    config: CONFIG,
    layer: [
      {
        data: { values },
        mark: { type: 'line', point: true },
        encoding: {
          x: { field: 'epoch', type: 'quantitative', title: 'epoch', axis: { tickMinStep: 1, format: 'd' } },
          y: {
            field: 'value',
            type: 'quantitative',
            title: what === 'loss' ? 'cross-entropy loss' : 'accuracy',
            scale: { zero: false },
            axis: what === 'accuracy' ? { format: '.0%' } : {},
          },
          color: { field: 'set', type: 'nominal', title: null, scale: { range: ['#4c78a8', '#f58518'] } },
        },
      },
      {
        data: { values: [{ epoch: bestEpoch, label: `best epoch ${bestEpoch}` }] },
        mark: { type: 'rule', strokeDash: [4, 3], color: '#888' },
        encoding: { x: { field: 'epoch', type: 'quantitative' } },
      },
      ...(changes.length > 0 ? learningRateMarkerLayers({ values: changes }) : []),
    ],
  } as TopLevelSpec;
}

/** A change of the learning rate made while a run trained (the web app's), where it took effect on a curve whose x is `epoch`. */
export interface LearningRateMarker {
  /** Epochs since the start, fractional: 1.5 is halfway through the second. */
  epoch: number;
  label: string;
}

/** The changes of the learning rate a run's history records (fit's learningRateChanges), as markers. */
export function learningRateMarkers(history: readonly EpochRecord[]): LearningRateMarker[] {
  return history.flatMap((record) => (record.learningRateChanges ?? []).map((change) => ({ epoch: change.at, label: `lr ${change.peakLearningRate}` })));
}

const MARKER_COLOUR = '#8a4b00';

/** Learning-rate markers as two layers of a chart whose x is `epoch` (a dashed rule and its label), drawn from the values given or a named data set (a live chart's). */
export function learningRateMarkerLayers(data: { name: string } | { values: LearningRateMarker[] }): object[] {
  const x = { field: 'epoch', type: 'quantitative' as const };
  return [
    { data, mark: { type: 'rule', color: MARKER_COLOUR, strokeDash: [2, 2], strokeWidth: 1.5 }, encoding: { x, tooltip: [{ field: 'label', type: 'nominal' as const, title: 'from here on' }] } },
    { data, mark: { type: 'text', color: MARKER_COLOUR, align: 'left', baseline: 'top', dx: 3, y: 2, fontSize: 10 }, encoding: { x, text: { field: 'label', type: 'nominal' as const } } },
  ];
}

/**
 * The test confusion matrix as an annotated heatmap: counts, or each row as shares of its
 * true class (so the diagonal is the recall).
 */
export function confusionSpec(matrix: ConfusionMatrix, classNames: readonly string[], normalise: boolean, title: string): TopLevelSpec {
  const values = matrix.flatMap((row, t) => {
    const total = row.reduce((a, b) => a + b, 0);
    return row.map((count, p) => ({
      true: `${t} ${classNames[t]}`,
      predicted: `${p} ${classNames[p]}`,
      value: normalise ? (total === 0 ? 0 : count / total) : count,
    }));
  });
  const order = classNames.map((name, c) => `${c} ${name}`);
  const maximum = Math.max(...values.map((v) => v.value));
  return {
    $schema: SCHEMA,
    title,
    width: 400,
    height: 400,
    config: CONFIG,
    data: { values },
    encoding: {
      x: { field: 'predicted', type: 'ordinal', sort: order, title: 'predicted class', axis: { labelAngle: -40 } },
      y: { field: 'true', type: 'ordinal', sort: order, title: 'true class' },
    },
    layer: [
      {
        mark: 'rect',
        encoding: {
          color: {
            field: 'value',
            type: 'quantitative',
            title: normalise ? 'share of row' : 'images',
            scale: { scheme: 'blues' },
            legend: normalise ? { format: '.0%' } : {},
          },
        },
      },
      {
        mark: { type: 'text', fontSize: 10 },
        encoding: {
          text: { field: 'value', type: 'quantitative', format: normalise ? '.0%' : 'd' },
          color: { condition: { test: `datum.value > ${maximum / 2}`, value: 'white' }, value: 'black' },
        },
      },
    ],
  };
}

/** One bar per model: a figure such as test accuracy or training time, labelled with its value. */
export function barSpec(
  rows: { model: string; value: number }[],
  options: { title: string; axisTitle: string; format: string; zeroBased?: boolean },
): TopLevelSpec {
  return {
    $schema: SCHEMA,
    title: options.title,
    width: 360,
    height: { step: 28 },
    config: CONFIG,
    data: { values: rows },
    encoding: {
      y: { field: 'model', type: 'nominal', sort: null, title: null },
      x: {
        field: 'value',
        type: 'quantitative',
        title: options.axisTitle,
        axis: { format: options.format },
        scale: { zero: options.zeroBased ?? true },
      },
    },
    layer: [
      { mark: { type: 'bar', color: '#4c78a8' } },
      { mark: { type: 'text', align: 'left', dx: 4 }, encoding: { text: { field: 'value', type: 'quantitative', format: options.format } } },
    ],
  };
}

/** Points in two dimensions coloured by class, such as a PCA projection of features. */
export function scatterSpec(
  points: { x: number; y: number; label: string }[],
  classNames: readonly string[],
  options: { title: string; xTitle: string; yTitle: string },
): TopLevelSpec {
  return {
    $schema: SCHEMA,
    title: options.title,
    width: 440,
    height: 360,
    config: CONFIG,
    data: { values: points },
    mark: { type: 'circle', size: 9, opacity: 0.6 },
    encoding: {
      x: { field: 'x', type: 'quantitative', title: options.xTitle, scale: { zero: false } },
      y: { field: 'y', type: 'quantitative', title: options.yTitle, scale: { zero: false } },
      color: { field: 'label', type: 'nominal', title: 'class', sort: [...classNames], scale: { scheme: 'category10' } },
    },
  };
}

/**
 * Validation accuracy of every trial against one hyperparameter: a log axis for rates that span
 * decades, categories for lists of values. Colour: epochs the trial trained (successive halving).
 */
export function hyperparameterSpec(
  points: { value: number | string; valAccuracy: number; epochs: number; trial: number }[],
  name: string,
  options: { scale: 'log' | 'linear' | 'category' },
): TopLevelSpec {
  const x =
    options.scale === 'category'
      ? { field: 'value', type: 'ordinal' as const, title: name }
      : { field: 'value', type: 'quantitative' as const, title: name, scale: options.scale === 'log' ? { type: 'log' as const } : { zero: false } };
  return {
    $schema: SCHEMA,
    title: `Validation accuracy against ${name}`,
    width: 300,
    height: 200,
    config: CONFIG,
    data: { values: points },
    mark: { type: 'point', filled: true, size: 50, opacity: 0.8 },
    encoding: {
      x,
      y: { field: 'valAccuracy', type: 'quantitative', title: 'validation accuracy', scale: { zero: false }, axis: { format: '.0%' } },
      color: { field: 'epochs', type: 'ordinal', title: 'epochs trained', scale: { scheme: 'viridis' } },
      tooltip: [{ field: 'trial' }, { field: 'value' }, { field: 'valAccuracy', format: '.2%' }],
    },
  };
}

/** Each trial's validation accuracy per epoch: successive halving shows as curves that stop. */
export function trialCurvesSpec(curves: { trial: number; epoch: number; valAccuracy: number }[], best: number): TopLevelSpec {
  return {
    $schema: SCHEMA,
    title: 'Learning curves of the trials (validation accuracy)',
    width: 400,
    height: 240,
    config: CONFIG,
    data: { values: curves.map((point) => ({ ...point, best: point.trial === best ? `trial ${best} (best)` : 'other trials' })) },
    mark: { type: 'line', point: { size: 24 } },
    encoding: {
      x: { field: 'epoch', type: 'quantitative', title: 'epoch', axis: { tickMinStep: 1, format: 'd' } },
      y: { field: 'valAccuracy', type: 'quantitative', title: 'validation accuracy', scale: { zero: false }, axis: { format: '.0%' } },
      detail: { field: 'trial', type: 'nominal' },
      color: { field: 'best', type: 'nominal', title: null, scale: { range: ['#e45756', '#9fb3c8'] }, sort: 'descending' },
      opacity: { condition: { test: `datum.trial === ${best}`, value: 1 }, value: 0.6 },
    },
  };
}
