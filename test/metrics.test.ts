import assert from 'node:assert/strict';
import { test } from 'node:test';
import { classificationReport, confusionMatrix, formatClassificationReport } from '../src/evaluation/metrics.ts';

const labels = [0, 0, 0, 1, 2, 2];
const predictions = [0, 1, 0, 1, 2, 0];

test('confusion matrix counts true classes by row and predictions by column', () => {
  assert.deepEqual(confusionMatrix(labels, predictions, 3), [
    [2, 1, 0],
    [0, 1, 0],
    [1, 0, 1],
  ]);
});

test('classification report: precision, recall, F1, support, averages', () => {
  const report = classificationReport(confusionMatrix(labels, predictions, 3), ['a', 'b', 'c']);
  const close = (actual: number, expected: number) => assert.ok(Math.abs(actual - expected) < 1e-12, `${actual} vs ${expected}`);
  const expected = [
    { precision: 2 / 3, recall: 2 / 3, f1: 2 / 3, support: 3 },
    { precision: 1 / 2, recall: 1, f1: 2 / 3, support: 1 },
    { precision: 1, recall: 1 / 2, f1: 2 / 3, support: 2 },
  ];
  expected.forEach((e, c) => {
    close(report.classes[c].precision, e.precision);
    close(report.classes[c].recall, e.recall);
    close(report.classes[c].f1, e.f1);
    assert.equal(report.classes[c].support, e.support);
  });
  close(report.accuracy, 4 / 6);
  close(report.macroAvg.precision, (2 / 3 + 1 / 2 + 1) / 3);
  close(report.weightedAvg.precision, (3 * (2 / 3) + 1 / 2 + 2) / 6);
  close(report.weightedAvg.recall, 4 / 6);
  assert.equal(report.macroAvg.support, 6);
});

test('a class never predicted has precision 0, not NaN', () => {
  const report = classificationReport(confusionMatrix([0, 1], [0, 0], 2), ['a', 'b']);
  assert.equal(report.classes[1].precision, 0);
  assert.equal(report.classes[1].f1, 0);
});

test('the printed report has scikit-learn layout', () => {
  const text = formatClassificationReport(classificationReport(confusionMatrix(labels, predictions, 3), ['0', '1', '2']));
  // What sklearn.metrics.classification_report(labels, predictions) prints for these inputs.
  const sklearn = [
    '              precision    recall  f1-score   support',
    '',
    '           0       0.67      0.67      0.67         3',
    '           1       0.50      1.00      0.67         1',
    '           2       1.00      0.50      0.67         2',
    '',
    '    accuracy                           0.67         6',
    '   macro avg       0.72      0.72      0.67         6',
    'weighted avg       0.75      0.67      0.67         6',
  ].join('\n');
  assert.equal(text, sklearn);
});
