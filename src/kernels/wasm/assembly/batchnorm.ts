// Batch normalisation over the last dimension of [rows, channels] (every position of a batch of
// NHWC images is a row). The statistics and the backward pass's sums are float64 per channel,
// rows in order, as the reference sums them; they accumulate in a static buffer, CHUNK channels
// at a time, so every row is read once per pass and the module allocates nothing.

import { at } from './addresses';

/** Channels summed per sweep over the rows: two float64 sums each, 32 KiB in all. */
const CHUNK: i32 = 2048;
const SUMS = memory.data(2 * CHUNK * 8);

@inline function sumAt(index: i32): usize {
  return SUMS + (<usize>index << 3);
}

/** Zeroes the first `count` sums of both halves of the buffer. */
@inline function clearSums(count: i32): void {
  memory.fill(sumAt(0), 0, <usize>count << 3);
  memory.fill(sumAt(CHUNK), 0, <usize>count << 3);
}

/** mean[c] and the biased variance[c] over the rows, in float64 (two passes). */
export function batchNormStatistics(mean: usize, variance: usize, inp: usize, rows: i32, channels: i32): void {
  for (let c0 = 0; c0 < channels; c0 += CHUNK) {
    const count = min(CHUNK, channels - c0);
    clearSums(count);
    for (let r = 0; r < rows; r++) {
      const row = at(inp, r * channels + c0);
      for (let c = 0; c < count; c++) store<f64>(sumAt(c), load<f64>(sumAt(c)) + <f64>load<f32>(at(row, c)));
    }
    for (let c = 0; c < count; c++) store<f64>(sumAt(c), load<f64>(sumAt(c)) / <f64>rows);
    for (let r = 0; r < rows; r++) {
      const row = at(inp, r * channels + c0);
      for (let c = 0; c < count; c++) {
        const d = <f64>load<f32>(at(row, c)) - load<f64>(sumAt(c));
        store<f64>(sumAt(CHUNK + c), load<f64>(sumAt(CHUNK + c)) + d * d);
      }
    }
    for (let c = 0; c < count; c++) {
      store<f32>(at(mean, c0 + c), <f32>load<f64>(sumAt(c)));
      store<f32>(at(variance, c0 + c), <f32>(load<f64>(sumAt(CHUNK + c)) / <f64>rows));
    }
  }
}

/** normalized = (inp - mean) · invStd; out = gamma · normalized + beta, per channel. */
export function batchNormForward(
  out: usize, normalized: usize, inp: usize, mean: usize, invStd: usize, gamma: usize, beta: usize, rows: i32, channels: i32,
): void {
  const vecEnd = channels & ~3;
  for (let r = 0; r < rows; r++) {
    const base = r * channels;
    for (let c = 0; c < vecEnd; c += 4) {
      const x = f32x4.mul(f32x4.sub(v128.load(at(inp, base + c)), v128.load(at(mean, c))), v128.load(at(invStd, c)));
      v128.store(at(normalized, base + c), x);
      v128.store(at(out, base + c), f32x4.add(f32x4.mul(v128.load(at(gamma, c)), x), v128.load(at(beta, c))));
    }
    for (let c = vecEnd; c < channels; c++) {
      const x = (load<f32>(at(inp, base + c)) - load<f32>(at(mean, c))) * load<f32>(at(invStd, c));
      store<f32>(at(normalized, base + c), x);
      store<f32>(at(out, base + c), load<f32>(at(gamma, c)) * x + load<f32>(at(beta, c)));
    }
  }
}

/** sumDout[c] = Σ dout[r,c], sumDoutNormalized[c] = Σ dout[r,c] · normalized[r,c], in float64. */
export function batchNormBackwardSums(sumDout: usize, sumDoutNormalized: usize, dout: usize, normalized: usize, rows: i32, channels: i32): void {
  for (let c0 = 0; c0 < channels; c0 += CHUNK) {
    const count = min(CHUNK, channels - c0);
    clearSums(count);
    for (let r = 0; r < rows; r++) {
      const base = r * channels + c0;
      for (let c = 0; c < count; c++) {
        const g = <f64>load<f32>(at(dout, base + c));
        store<f64>(sumAt(c), load<f64>(sumAt(c)) + g);
        store<f64>(sumAt(CHUNK + c), load<f64>(sumAt(CHUNK + c)) + g * <f64>load<f32>(at(normalized, base + c)));
      }
    }
    for (let c = 0; c < count; c++) {
      store<f32>(at(sumDout, c0 + c), <f32>load<f64>(sumAt(c)));
      store<f32>(at(sumDoutNormalized, c0 + c), <f32>load<f64>(sumAt(CHUNK + c)));
    }
  }
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
