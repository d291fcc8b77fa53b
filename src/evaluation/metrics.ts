import { NUM_CLASSES } from '../data/idx.ts';
import { CLASS_NAMES } from '../data/manifest.ts';

/** counts[true][predicted]. */
export type ConfusionMatrix = number[][];

export function confusionMatrix(labels: ArrayLike<number>, predictions: ArrayLike<number>, classes: number): ConfusionMatrix {
  const counts = Array.from({ length: classes }, () => new Array<number>(classes).fill(0));
  for (let i = 0; i < labels.length; i++) counts[labels[i]][predictions[i]]++;
  return counts;
}

export interface ClassScores {
  precision: number;
  recall: number;
  f1: number;
  /** Number of examples whose true label is this class. */
  support: number;
}

export interface ClassificationReport {
  classes: (ClassScores & { name: string })[];
  accuracy: number;
  macroAvg: ClassScores;
  weightedAvg: ClassScores;
}

/**
 * Precision, recall and F1 per class, with macro and support-weighted averages, defined as
 * scikit-learn's classification_report defines them (a 0/0 ratio counts as 0).
 */
export function classificationReport(matrix: ConfusionMatrix, classNames: readonly string[]): ClassificationReport {
  const n = matrix.length;
  if (classNames.length !== n) throw new Error(`${classNames.length} class names for a ${n}x${n} confusion matrix`);
  const total = matrix.flat().reduce((sum, count) => sum + count, 0);
  let correct = 0;
  const classes = classNames.map((name, c) => {
    const truePositives = matrix[c][c];
    correct += truePositives;
    const predicted = matrix.reduce((sum, row) => sum + row[c], 0);
    const support = matrix[c].reduce((sum, count) => sum + count, 0);
    const precision = predicted === 0 ? 0 : truePositives / predicted;
    const recall = support === 0 ? 0 : truePositives / support;
    const f1 = precision + recall === 0 ? 0 : (2 * precision * recall) / (precision + recall);
    return { name, precision, recall, f1, support };
  });
  const average = (weight: (scores: ClassScores) => number): ClassScores => {
    const weights = classes.map(weight);
    const sum = weights.reduce((a, b) => a + b, 0);
    const mean = (key: 'precision' | 'recall' | 'f1') =>
      sum === 0 ? 0 : classes.reduce((acc, scores, c) => acc + scores[key] * weights[c], 0) / sum;
    return { precision: mean('precision'), recall: mean('recall'), f1: mean('f1'), support: total };
  };
  return {
    classes,
    accuracy: total === 0 ? 0 : correct / total,
    macroAvg: average(() => 1),
    weightedAvg: average((scores) => scores.support),
  };
}

/** The report as scikit-learn's classification_report prints it (two decimals). */
export function formatClassificationReport(report: ClassificationReport): string {
  const width = Math.max(12, ...report.classes.map((c) => c.name.length));
  // scikit-learn's layout: the name right-aligned to `width`, then each column as " " + 9 wide.
  const line = (name: string, cells: string[]) => `${name.padStart(width)} ${cells.map((cell) => ` ${cell.padStart(9)}`).join('')}`;
  const fixed = (value: number) => value.toFixed(2);
  const row = (name: string, s: ClassScores) => line(name, [fixed(s.precision), fixed(s.recall), fixed(s.f1), String(s.support)]);
  return [
    line('', ['precision', 'recall', 'f1-score', 'support']),
    '',
    ...report.classes.map((scores) => row(scores.name, scores)),
    '',
    line('accuracy', ['', '', fixed(report.accuracy), String(report.weightedAvg.support)]),
    row('macro avg', report.macroAvg),
    row('weighted avg', report.weightedAvg),
  ].join('\n');
}

/** The matrix as a table: rows are true classes, columns predicted ones (numbered as in `legend`). */
export function formatConfusionMatrix(matrix: ConfusionMatrix, classNames: readonly string[]): string {
  const width = Math.max(5, ...matrix.flat().map((count) => String(count).length + 1));
  const nameWidth = Math.max(...classNames.map((name) => name.length)) + 4;
  const header = `${'true \\ predicted'.padEnd(nameWidth)}${matrix.map((_, c) => String(c).padStart(width)).join('')}`;
  const rows = matrix.map(
    (row, r) => `${`${r} ${classNames[r]}`.padEnd(nameWidth)}${row.map((count) => String(count).padStart(width)).join('')}`,
  );
  return [header, ...rows].join('\n');
}

/** A model's figures on the test set, as metrics.json holds them. */
export interface TestMetrics {
  accuracy: number;
  loss: number;
  confusionMatrix: ConfusionMatrix;
  report: ClassificationReport;
}

/** Test figures of a model's predictions against the labels. */
export function testMetrics(labels: Uint8Array, predictions: Uint8Array, accuracy: number, loss: number): TestMetrics {
  const matrix = confusionMatrix(labels, predictions, NUM_CLASSES);
  return { accuracy, loss, confusionMatrix: matrix, report: classificationReport(matrix, CLASS_NAMES) };
}
