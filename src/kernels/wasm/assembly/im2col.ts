// Convolution (NHWC, stride 1, "same" padding) as im2col + gemm, one image at a time.
// An image's column matrix has one row per output pixel (y, x) and one column per tap
// (dy, dx, c): H·W rows of K·K·C floats. The weight [K, K, C, O] is then a (K·K·C) x O matrix.

import { gemm } from './gemm';
import { at } from './addresses';

function im2col(col: usize, image: usize, height: i32, width: i32, channels: i32, kernel: i32): void {
  if (channels == 1) {
    im2colOneChannel(col, image, height, width, kernel);
    return;
  }
  const pad = (kernel - 1) >> 1;
  const tap = <usize>channels << 2;
  let dst = col;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      for (let dy = 0; dy < kernel; dy++) {
        const sy = y + dy - pad;
        for (let dx = 0; dx < kernel; dx++) {
          const sx = x + dx - pad;
          if (sy >= 0 && sy < height && sx >= 0 && sx < width) memory.copy(dst, at(image, (sy * width + sx) * channels), tap);
          else memory.fill(dst, 0, tap);
          dst += tap;
        }
      }
    }
  }
}

// im2col of a one-channel image (the first layer): a float per tap, stored directly (a
// memory.copy per float costs more than the product that follows).
function im2colOneChannel(col: usize, image: usize, height: i32, width: i32, kernel: i32): void {
  const pad = (kernel - 1) >> 1;
  let dst = col;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      for (let dy = 0; dy < kernel; dy++) {
        const sy = y + dy - pad;
        const inside = sy >= 0 && sy < height;
        for (let dx = 0; dx < kernel; dx++) {
          const sx = x + dx - pad;
          store<f32>(dst, inside && sx >= 0 && sx < width ? load<f32>(at(image, sy * width + sx)) : 0);
          dst += 4;
        }
      }
    }
  }
}

// image += the column matrix scattered back to the pixels it was gathered from.
function col2imAdd(image: usize, col: usize, height: i32, width: i32, channels: i32, kernel: i32): void {
  const pad = (kernel - 1) >> 1;
  const vecEnd = channels & ~3;
  let src = col;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      for (let dy = 0; dy < kernel; dy++) {
        const sy = y + dy - pad;
        for (let dx = 0; dx < kernel; dx++) {
          const sx = x + dx - pad;
          if (sy >= 0 && sy < height && sx >= 0 && sx < width) {
            const dst = at(image, (sy * width + sx) * channels);
            for (let c = 0; c < vecEnd; c += 4) v128.store(at(dst, c), f32x4.add(v128.load(at(dst, c)), v128.load(at(src, c))));
            for (let c = vecEnd; c < channels; c++) store<f32>(at(dst, c), load<f32>(at(dst, c)) + load<f32>(at(src, c)));
          }
          src += <usize>channels << 2;
        }
      }
    }
  }
}

/** Images b0 .. b1 of out[B, H, W, O] = conv(inp[B, H, W, C], weight[K, K, C, O]); `col` holds H·W·K·K·C floats. */
export function conv2dForward(
  out: usize, inp: usize, weight: usize, b0: i32, b1: i32,
  height: i32, width: i32, channels: i32, filters: i32, kernel: i32, col: usize, scratch: usize,
): void {
  const pixels = height * width;
  const taps = kernel * kernel * channels;
  for (let b = b0; b < b1; b++) {
    im2col(col, at(inp, b * pixels * channels), height, width, channels, kernel);
    gemm(filters, taps, col, taps, 1, weight, filters, 1, at(out, b * pixels * filters), filters, false, 0, pixels, scratch);
  }
}

/** Images b0 .. b1 of dinp = the input gradient of conv2dForward (overwritten). */
export function conv2dBackwardInput(
  dinp: usize, dout: usize, weight: usize, b0: i32, b1: i32,
  height: i32, width: i32, channels: i32, filters: i32, kernel: i32, col: usize, scratch: usize,
): void {
  const pixels = height * width;
  const taps = kernel * kernel * channels;
  for (let b = b0; b < b1; b++) {
    // dcol[pixels, taps] = dout_b[pixels, filters] · weight[taps, filters]ᵀ
    gemm(taps, filters, at(dout, b * pixels * filters), filters, 1, weight, 1, filters, col, taps, false, 0, pixels, scratch);
    const image = at(dinp, b * pixels * channels);
    memory.fill(image, 0, <usize>(pixels * channels) << 2);
    col2imAdd(image, col, height, width, channels, kernel);
  }
}

/**
 * The weight gradient of images b0 .. b1, transposed: dweightT[filters, taps] = Σ_b dout_bᵀ · col_b
 * (overwritten). This orientation packs the large column matrix with contiguous vector loads;
 * addTransposed then adds it to the [taps, filters] gradient once per call.
 */
export function conv2dBackwardWeight(
  dweightT: usize, inp: usize, dout: usize, b0: i32, b1: i32,
  height: i32, width: i32, channels: i32, filters: i32, kernel: i32, col: usize, scratch: usize,
): void {
  const pixels = height * width;
  const taps = kernel * kernel * channels;
  memory.fill(dweightT, 0, <usize>(taps * filters) << 2);
  for (let b = b0; b < b1; b++) {
    im2col(col, at(inp, b * pixels * channels), height, width, channels, kernel);
    gemm(taps, pixels, at(dout, b * pixels * filters), 1, filters, col, taps, 1, dweightT, taps, true, 0, filters, scratch);
  }
}

/** dst[r, c] += src[c, r] for dst [rows, cols]. */
export function addTransposed(dst: usize, src: usize, rows: i32, cols: i32): void {
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) store<f32>(at(dst, r * cols + c), load<f32>(at(dst, r * cols + c)) + load<f32>(at(src, c * rows + r)));
  }
}
