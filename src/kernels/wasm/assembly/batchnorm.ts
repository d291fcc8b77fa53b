// Batch normalisation over the last dimension of [rows, channels] (every position of a batch of
// NHWC images is a row). The statistics and the backward pass's sums are float64 per channel,
// summed by row ranges (one per thread, see backend.ts) whose sums are added in a fixed order.

import { at } from './addresses';

@inline function f64At(ptr: usize, index: i32): usize {
  return ptr + (<usize>index << 3);
}

/** Adds the float64 vector v to the two doubles at ptr. */
@inline function addF64x2(ptr: usize, v: v128): void {
  v128.store(ptr, f64x2.add(v128.load(ptr), v));
}

/** The upper two floats of a float32x4 as float64x2. */
@inline function promoteHigh(v: v128): v128 {
  return f64x2.promote_low_f32x4(i32x4.shuffle(v, v, 2, 3, 2, 3));
}

/**
 * The float64 sums of rows [rowStart, rowEnd) per channel, into sums [2, channels] (overwritten):
 * with b (b ≠ 0): Σ b and Σ a·b; else with mean (≠ 0, float64 [channels]): 0 and Σ (a - mean)²;
 * else Σ a and 0. Four channels at a time in float64x2 pairs: each channel's sum adds the
 * same values in the same order as the scalar loop over the remaining channels.
 */
export function batchNormPartialSums(sums: usize, a: usize, b: usize, mean: usize, rowStart: i32, rowEnd: i32, channels: i32): void {
  memory.fill(sums, 0, <usize>(2 * channels) << 3);
  const second = f64At(sums, channels);
  const vecEnd = channels & ~3;
  for (let r = rowStart; r < rowEnd; r++) {
    const row = at(a, r * channels);
    if (b != 0) {
      const other = at(b, r * channels);
      for (let c = 0; c < vecEnd; c += 4) {
        const gs = v128.load(at(other, c));
        const xs = v128.load(at(row, c));
        const gLow = f64x2.promote_low_f32x4(gs);
        const gHigh = promoteHigh(gs);
        addF64x2(f64At(sums, c), gLow);
        addF64x2(f64At(sums, c + 2), gHigh);
        addF64x2(f64At(second, c), f64x2.mul(gLow, f64x2.promote_low_f32x4(xs)));
        addF64x2(f64At(second, c + 2), f64x2.mul(gHigh, promoteHigh(xs)));
      }
      for (let c = vecEnd; c < channels; c++) {
        const g = <f64>load<f32>(at(other, c));
        store<f64>(f64At(sums, c), load<f64>(f64At(sums, c)) + g);
        store<f64>(f64At(second, c), load<f64>(f64At(second, c)) + g * <f64>load<f32>(at(row, c)));
      }
    } else if (mean != 0) {
      for (let c = 0; c < vecEnd; c += 4) {
        const xs = v128.load(at(row, c));
        const dLow = f64x2.sub(f64x2.promote_low_f32x4(xs), v128.load(f64At(mean, c)));
        const dHigh = f64x2.sub(promoteHigh(xs), v128.load(f64At(mean, c + 2)));
        addF64x2(f64At(second, c), f64x2.mul(dLow, dLow));
        addF64x2(f64At(second, c + 2), f64x2.mul(dHigh, dHigh));
      }
      for (let c = vecEnd; c < channels; c++) {
        const d = <f64>load<f32>(at(row, c)) - load<f64>(f64At(mean, c));
        store<f64>(f64At(second, c), load<f64>(f64At(second, c)) + d * d);
      }
    } else {
      for (let c = 0; c < vecEnd; c += 4) {
        const xs = v128.load(at(row, c));
        addF64x2(f64At(sums, c), f64x2.promote_low_f32x4(xs));
        addF64x2(f64At(sums, c + 2), promoteHigh(xs));
      }
      for (let c = vecEnd; c < channels; c++) store<f64>(f64At(sums, c), load<f64>(f64At(sums, c)) + <f64>load<f32>(at(row, c)));
    }
  }
}

/**
 * normalized = (inp - mean) · invStd; out = gamma · normalized + beta, per channel; with relu,
 * max(out, 0) before it is stored (pmax(0, y) is y > 0 ? y : 0, NaN included). Inlined into
 * each kernel with relu a constant, so each keeps one loop.
 */
@inline function normalizeRows(
  relu: bool, out: usize, normalized: usize, inp: usize, mean: usize, invStd: usize, gamma: usize, beta: usize, rows: i32, channels: i32,
): void {
  const zero = f32x4.splat(0);
  const vecEnd = channels & ~3;
  for (let r = 0; r < rows; r++) {
    const base = r * channels;
    for (let c = 0; c < vecEnd; c += 4) {
      const x = f32x4.mul(f32x4.sub(v128.load(at(inp, base + c)), v128.load(at(mean, c))), v128.load(at(invStd, c)));
      v128.store(at(normalized, base + c), x);
      const y = f32x4.add(f32x4.mul(v128.load(at(gamma, c)), x), v128.load(at(beta, c)));
      v128.store(at(out, base + c), relu ? f32x4.pmax(zero, y) : y);
    }
    for (let c = vecEnd; c < channels; c++) {
      const x = (load<f32>(at(inp, base + c)) - load<f32>(at(mean, c))) * load<f32>(at(invStd, c));
      store<f32>(at(normalized, base + c), x);
      const y = load<f32>(at(gamma, c)) * x + load<f32>(at(beta, c));
      store<f32>(at(out, base + c), relu && !(y > 0) ? 0 : y);
    }
  }
}

/** normalized = (inp - mean) · invStd; out = gamma · normalized + beta, per channel. */
export function batchNormForward(
  out: usize, normalized: usize, inp: usize, mean: usize, invStd: usize, gamma: usize, beta: usize, rows: i32, channels: i32,
): void {
  normalizeRows(false, out, normalized, inp, mean, invStd, gamma, beta, rows, channels);
}

/** batchNormForward, then max(out, 0) before it is stored. */
export function batchNormReluForward(
  out: usize, normalized: usize, inp: usize, mean: usize, invStd: usize, gamma: usize, beta: usize, rows: i32, channels: i32,
): void {
  normalizeRows(true, out, normalized, inp, mean, invStd, gamma, beta, rows, channels);
}

/** dinp = doutScale · dout - offset - normalized · normalizedScale, per channel. */
export function batchNormBackward(
  dinp: usize, dout: usize, normalized: usize, doutScale: usize, offset: usize, normalizedScale: usize, rows: i32, channels: i32,
): void {
  const vecEnd = channels & ~3;
  for (let r = 0; r < rows; r++) {
    const base = r * channels;
    for (let c = 0; c < vecEnd; c += 4) {
      const scaled = f32x4.sub(f32x4.mul(v128.load(at(doutScale, c)), v128.load(at(dout, base + c))), v128.load(at(offset, c)));
      v128.store(at(dinp, base + c), f32x4.sub(scaled, f32x4.mul(v128.load(at(normalized, base + c)), v128.load(at(normalizedScale, c)))));
    }
    for (let c = vecEnd; c < channels; c++) {
      const scaled = load<f32>(at(doutScale, c)) * load<f32>(at(dout, base + c)) - load<f32>(at(offset, c));
      store<f32>(at(dinp, base + c), scaled - load<f32>(at(normalized, base + c)) * load<f32>(at(normalizedScale, c)));
    }
  }
}

/** out = inp · scale + shift, per channel. */
export function channelAffine(out: usize, inp: usize, scale: usize, shift: usize, rows: i32, channels: i32): void {
  const vecEnd = channels & ~3;
  for (let r = 0; r < rows; r++) {
    const base = r * channels;
    for (let c = 0; c < vecEnd; c += 4) {
      v128.store(at(out, base + c), f32x4.add(f32x4.mul(v128.load(at(inp, base + c)), v128.load(at(scale, c))), v128.load(at(shift, c))));
    }
    for (let c = vecEnd; c < channels; c++) store<f32>(at(out, base + c), load<f32>(at(inp, base + c)) * load<f32>(at(scale, c)) + load<f32>(at(shift, c)));
  }
}
