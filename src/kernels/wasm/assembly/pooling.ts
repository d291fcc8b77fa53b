// 2x2 max pooling, stride 2, NHWC, and its gradient.

import { at } from './addresses';

export function maxPool2x2(out: usize, inp: usize, batch: i32, height: i32, width: i32, channels: i32): void {
  const outH = height >> 1;
  const outW = width >> 1;
  const vecEnd = channels & ~3;
  for (let b = 0; b < batch; b++) {
    for (let y = 0; y < outH; y++) {
      for (let x = 0; x < outW; x++) {
        const o = at(out, ((b * outH + y) * outW + x) * channels);
        const i00 = at(inp, ((b * height + 2 * y) * width + 2 * x) * channels);
        const i01 = at(i00, channels);
        const i10 = at(i00, width * channels);
        const i11 = at(i10, channels);
        for (let c = 0; c < vecEnd; c += 4) {
          const top = f32x4.max(v128.load(at(i00, c)), v128.load(at(i01, c)));
          const bottom = f32x4.max(v128.load(at(i10, c)), v128.load(at(i11, c)));
          v128.store(at(o, c), f32x4.max(top, bottom));
        }
        for (let c = vecEnd; c < channels; c++) {
          store<f32>(at(o, c), max(max(load<f32>(at(i00, c)), load<f32>(at(i01, c))), max(load<f32>(at(i10, c)), load<f32>(at(i11, c)))));
        }
      }
    }
  }
}

export function maxPool2x2Backward(
  dinp: usize, dout: usize, inp: usize, out: usize, batch: i32, height: i32, width: i32, channels: i32,
): void {
  const outH = height >> 1;
  const outW = width >> 1;
  const vecEnd = channels & ~3;
  memory.fill(dinp, 0, <usize>(batch * height * width * channels) << 2);
  for (let b = 0; b < batch; b++) {
    for (let y = 0; y < outH; y++) {
      for (let x = 0; x < outW; x++) {
        const o = ((b * outH + y) * outW + x) * channels;
        const i00 = ((b * height + 2 * y) * width + 2 * x) * channels;
        const i01 = i00 + channels;
        const i10 = i00 + width * channels;
        const i11 = i10 + channels;
        // Four channels at a time: each window element takes the gradient where it equals the
        // maximum and no earlier one does (the first element when none does, as for NaN).
        for (let c = 0; c < vecEnd; c += 4) {
          const m = v128.load(at(out, o + c));
          const g = v128.load(at(dout, o + c));
          const e00 = f32x4.eq(v128.load(at(inp, i00 + c)), m);
          const e01 = f32x4.eq(v128.load(at(inp, i01 + c)), m);
          const e10 = f32x4.eq(v128.load(at(inp, i10 + c)), m);
          const e11 = f32x4.eq(v128.load(at(inp, i11 + c)), m);
          const w01 = v128.andnot(e01, e00);
          const w10 = v128.andnot(e10, v128.or(e00, e01));
          const w11 = v128.andnot(e11, v128.or(v128.or(e00, e01), e10));
          const w00 = v128.not(v128.or(v128.or(w01, w10), w11));
          v128.store(at(dinp, i00 + c), v128.and(g, w00));
          v128.store(at(dinp, i01 + c), v128.and(g, w01));
          v128.store(at(dinp, i10 + c), v128.and(g, w10));
          v128.store(at(dinp, i11 + c), v128.and(g, w11));
        }
        for (let c = vecEnd; c < channels; c++) {
          const m = load<f32>(at(out, o + c));
          // The first element of the window equal to the maximum takes the gradient.
          const winner =
            load<f32>(at(inp, i00 + c)) == m ? i00
            : load<f32>(at(inp, i01 + c)) == m ? i01
            : load<f32>(at(inp, i10 + c)) == m ? i10
            : load<f32>(at(inp, i11 + c)) == m ? i11
            : i00;
          store<f32>(at(dinp, winner + c), load<f32>(at(dout, o + c)));
        }
      }
    }
  }
}
