// A batch's image bytes to floats in [0, 1].

import { at } from './addresses';

/** out[i] = bytes[i] / 255, sixteen bytes at a time (float division, as the reference). */
export function scalePixels(out: usize, bytes: usize, n: i32): void {
  const divisor = f32x4.splat(255);
  const vecEnd = n & ~15;
  for (let i = 0; i < vecEnd; i += 16) {
    const v = v128.load(bytes + i);
    const low = i16x8.extend_low_i8x16_u(v);
    const high = i16x8.extend_high_i8x16_u(v);
    const o = at(out, i);
    v128.store(o, f32x4.div(f32x4.convert_i32x4_u(i32x4.extend_low_i16x8_u(low)), divisor));
    v128.store(o, f32x4.div(f32x4.convert_i32x4_u(i32x4.extend_high_i16x8_u(low)), divisor), 16);
    v128.store(o, f32x4.div(f32x4.convert_i32x4_u(i32x4.extend_low_i16x8_u(high)), divisor), 32);
    v128.store(o, f32x4.div(f32x4.convert_i32x4_u(i32x4.extend_high_i16x8_u(high)), divisor), 48);
  }
  for (let i = vecEnd; i < n; i++) store<f32>(at(out, i), <f32>load<u8>(bytes + i) / 255);
}
