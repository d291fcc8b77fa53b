// Softmax cross-entropy and its gradient with respect to the logits.

import { at } from './addresses';

/** probs = softmax(logits) row by row (max-subtracted); returns the mean of -log p[label]. */
export function softmaxCrossEntropy(probs: usize, logits: usize, labels: usize, rows: i32, cols: i32): f64 {
  let total: f64 = 0;
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
    const label = <i32>load<u8>(labels + <usize>r);
    total -= <f64>load<f32>(at(inRow, label)) - max - Math.log(sum);
  }
  return total / <f64>rows;
}

/** dlogits = (probs - onehot(labels)) / rows. */
export function softmaxCrossEntropyBackward(dlogits: usize, probs: usize, labels: usize, rows: i32, cols: i32): void {
  const scale: f32 = <f32>(1.0 / <f64>rows);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) store<f32>(at(dlogits, r * cols + c), load<f32>(at(probs, r * cols + c)) * scale);
    const label = <i32>load<u8>(labels + <usize>r);
    const target = at(dlogits, r * cols + label);
    store<f32>(target, load<f32>(target) - scale);
  }
}
