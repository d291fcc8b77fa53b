// Dropout's mask, drawn from a counter-based hash so every backend draws the same mask.

import { at } from './addresses';

// Dropout's generator (see dropoutMask in src/kernels/spec.ts and dropoutWord in js.ts).
@inline function lowbias32(x: u32): u32 {
  x ^= x >>> 16;
  x *= 0x7feb352d;
  x ^= x >>> 15;
  x *= 0x846ca68b;
  return x ^ (x >>> 16);
}

@inline function lowbias32x4(x: v128): v128 {
  x = v128.xor(x, i32x4.shr_u(x, 16));
  x = i32x4.mul(x, i32x4.splat(0x7feb352d));
  x = v128.xor(x, i32x4.shr_u(x, 15));
  x = i32x4.mul(x, i32x4.splat(<i32>0x846ca68b));
  return v128.xor(x, i32x4.shr_u(x, 16));
}

/** mask[i] = scale where draw i < threshold, else 0: four words, eight elements at a time. */
export function dropoutMask(mask: usize, n: i32, threshold: i32, scale: f32, key0: u32, key1: u32): void {
  const blocks = n >> 3;
  const k0 = i32x4.splat(key0);
  const k1 = i32x4.splat(key1);
  const limit = i32x4.splat(threshold);
  const scales = f32x4.splat(scale);
  const halfMask = i32x4.splat(0xffff);
  let counter = i32x4(0, 1, 2, 3);
  for (let b = 0; b < blocks; b++) {
    const word = lowbias32x4(i32x4.add(lowbias32x4(v128.xor(counter, k0)), k1));
    const out = at(mask, 8 * b);
    v128.store(out, v128.and(i32x4.lt_s(v128.and(word, halfMask), limit), scales));
    v128.store(out, v128.and(i32x4.lt_s(i32x4.shr_u(word, 16), limit), scales), 16);
    counter = i32x4.add(counter, i32x4.splat(4));
  }
  for (let r = 0; r < 4 && 8 * blocks + r < n; r++) {
    const word = lowbias32(lowbias32(<u32>(4 * blocks + r) ^ key0) + key1);
    const i = 8 * blocks + r;
    store<f32>(at(mask, i), <i32>(word & 0xffff) < threshold ? scale : 0);
    if (i + 4 < n) store<f32>(at(mask, i + 4), <i32>(word >>> 16) < threshold ? scale : 0);
  }
}
