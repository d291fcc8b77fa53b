// Softmax cross-entropy and its gradient with respect to the logits.

import { at } from './addresses';

/** probs = softmax(logits) row by row (max-subtracted); losses[r] = row r's cross-entropy against its label (int32) smoothed by `smoothing`. */
export function softmaxCrossEntropy(probs: usize, losses: usize, logits: usize, labels: usize, rows: i32, cols: i32, smoothing: f32): void {
  for (let r = 0; r < rows; r++) {
    const inRow = at(logits, r * cols);
    const outRow = at(probs, r * cols);
    let max: f64 = -Infinity;
    for (let c = 0; c < cols; c++) max = Math.max(max, <f64>load<f32>(at(inRow, c)));
    let sum: f64 = 0;
    for (let c = 0; c < cols; c++) {
      const e = Math.exp(<f64>load<f32>(at(inRow, c)) - max);
      store<f32>(at(outRow, c), <f32>e);
      sum += e;
    }
    for (let c = 0; c < cols; c++) store<f32>(at(outRow, c), <f32>(<f64>load<f32>(at(outRow, c)) / sum));
    const label = load<i32>(at(labels, r));
    const logSum = Math.log(sum);
    let loss: f64;
    if (smoothing > 0) {
      let logAll: f64 = 0;
      for (let c = 0; c < cols; c++) logAll += <f64>load<f32>(at(inRow, c)) - max - logSum;
      loss = -((1 - <f64>smoothing) * (<f64>load<f32>(at(inRow, label)) - max - logSum) + (<f64>smoothing / <f64>cols) * logAll);
    } else {
      loss = -(<f64>load<f32>(at(inRow, label)) - max - logSum);
    }
    store<f32>(at(losses, r), <f32>loss);
  }
}

/** dlogits = (probs - q) / rows, q = (1 - smoothing)·onehot(labels) + smoothing / cols. */
export function softmaxCrossEntropyBackward(dlogits: usize, probs: usize, labels: usize, rows: i32, cols: i32, smoothing: f32): void {
  const scale: f32 = <f32>(1.0 / <f64>rows);
  const spread: f32 = smoothing / <f32>cols * scale;
  const hit: f32 = smoothing > 0 ? (1 - smoothing) * scale : scale;
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const p = load<f32>(at(probs, r * cols + c)) * scale;
      store<f32>(at(dlogits, r * cols + c), smoothing > 0 ? p - spread : p);
    }
    const label = load<i32>(at(labels, r));
    const target = at(dlogits, r * cols + label);
    store<f32>(target, load<f32>(target) - hit);
  }
}
