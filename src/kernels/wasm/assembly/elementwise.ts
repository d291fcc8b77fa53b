// Elementwise kernels and the bias: bias add and its gradient (row sums), ReLU and its
// gradient, zeroing, elementwise product, and the moving average of the weights (whose results
// are flushed: subnormal.ts).

import { at } from './addresses';
import { flushSubnormal, flushSubnormal4 } from './subnormal';

/** out[r, c] += bias[c]. */
export function addBias(out: usize, bias: usize, rows: i32, cols: i32): void {
  const vecEnd = cols & ~3;
  for (let r = 0; r < rows; r++) {
    const row = at(out, r * cols);
    for (let c = 0; c < vecEnd; c += 4) v128.store(at(row, c), f32x4.add(v128.load(at(row, c)), v128.load(at(bias, c))));
    for (let c = vecEnd; c < cols; c++) store<f32>(at(row, c), load<f32>(at(row, c)) + load<f32>(at(bias, c)));
  }
}

/** dbias[c] += Σ_r dout[r, c]. */
export function sumRows(dbias: usize, dout: usize, rows: i32, cols: i32): void {
  const vecEnd = cols & ~3;
  for (let r = 0; r < rows; r++) {
    const row = at(dout, r * cols);
    for (let c = 0; c < vecEnd; c += 4) v128.store(at(dbias, c), f32x4.add(v128.load(at(dbias, c)), v128.load(at(row, c))));
    for (let c = vecEnd; c < cols; c++) store<f32>(at(dbias, c), load<f32>(at(dbias, c)) + load<f32>(at(row, c)));
  }
}

/** out[i] = max(inp[i], 0). */
export function relu(out: usize, inp: usize, n: i32): void {
  const zero = f32x4.splat(0);
  const vecEnd = n & ~3;
  // pmax(0, x) returns 0 for NaN inputs, where the reference (x > 0 ? x : 0) does too.
  for (let i = 0; i < vecEnd; i += 4) v128.store(at(out, i), f32x4.pmax(zero, v128.load(at(inp, i))));
  for (let i = vecEnd; i < n; i++) {
    const x = load<f32>(at(inp, i));
    store<f32>(at(out, i), x > 0 ? x : 0);
  }
}

/** dinp[i] = out[i] > 0 ? dout[i] : 0. */
export function reluBackward(dinp: usize, dout: usize, out: usize, n: i32): void {
  const zero = f32x4.splat(0);
  const vecEnd = n & ~3;
  for (let i = 0; i < vecEnd; i += 4) {
    v128.store(at(dinp, i), v128.and(v128.load(at(dout, i)), f32x4.gt(v128.load(at(out, i)), zero)));
  }
  for (let i = vecEnd; i < n; i++) store<f32>(at(dinp, i), load<f32>(at(out, i)) > 0 ? load<f32>(at(dout, i)) : 0);
}

/** out[i] = 0. (TypedArray.fill is about five times slower on a shared memory's buffer.) */
export function zero(out: usize, n: i32): void {
  memory.fill(out, 0, <usize>n << 2);
}

/** out[i] = a[i] * b[i]. */
export function multiply(out: usize, a: usize, b: usize, n: i32): void {
  const vecEnd = n & ~3;
  for (let i = 0; i < vecEnd; i += 4) v128.store(at(out, i), f32x4.mul(v128.load(at(a, i)), v128.load(at(b, i))));
  for (let i = vecEnd; i < n; i++) store<f32>(at(out, i), load<f32>(at(a, i)) * load<f32>(at(b, i)));
}

/** average = decay · average + (1 - decay) · values: an exponential moving average of the weights. */
export function emaUpdate(average: usize, values: usize, n: i32, decay: f32): void {
  const keep = f32x4.splat(decay), take = f32x4.splat(1 - decay);
  const vecEnd = n & ~3;
  for (let i = 0; i < vecEnd; i += 4) {
    v128.store(at(average, i), flushSubnormal4(f32x4.add(f32x4.mul(keep, v128.load(at(average, i))), f32x4.mul(take, v128.load(at(values, i))))));
  }
  for (let i = vecEnd; i < n; i++) store<f32>(at(average, i), flushSubnormal(decay * load<f32>(at(average, i)) + (1 - decay) * load<f32>(at(values, i))));
}
