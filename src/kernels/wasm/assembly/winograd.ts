// Winograd F(2x2, 3x3): the 3x3 convolutions with 2.25x fewer multiplications.
// Each 2x2 block of outputs (a tile) is Aᵀ [Σ_c (G g Gᵀ) ⊙ (Bᵀ d B)] A over the 4x4 input window
// d around it (Lavin & Gray 2016). With V[ξ][tile][c] = Bᵀ d B and U[ξ][c][o] = G g Gᵀ
// (ξ = 4i + j), the sum over channels is 16 matrix products M[ξ] = V[ξ] · U[ξ]. The backend uses
// it for 3x3 convolutions whose channel counts are multiples of 4 and at least 8 (the same
// algorithm as the native backend's; the channel loops here are f32x4 only).

import { gemm } from './gemm';
import { at } from './addresses';

/** Tiles per chunk of images: a chunk's V and M stay in cache. */
const WINOGRAD_CHUNK_TILES: i32 = 128;
const HALF: f32 = 0.5;

/** Images per chunk: whole images, at least WINOGRAD_CHUNK_TILES tiles (perImage tiles each). */
@inline function winogradChunkImages(perImage: i32): i32 {
  return (WINOGRAD_CHUNK_TILES + perImage - 1) / perImage;
}

/** Floats of the per-thread buffer winogradForward and winogradWeight need. */
export function winogradBufferFloats(height: i32, width: i32, inC: i32, outC: i32): i32 {
  const perImage = ((height + 1) >> 1) * ((width + 1) >> 1);
  return 16 * winogradChunkImages(perImage) * perImage * (inC + outC) + outC;
}

/**
 * u[16, inC, outC] = G g Gᵀ for each filter g of weight [3, 3, inC, outC], G = [1 0 0; ½ ½ ½;
 * ½ -½ ½; 0 0 1]. With `flip` (the input gradient: the forward convolution of the output
 * gradient with the filters turned 180 degrees and in/out exchanged) weight is [3, 3, outC, inC]
 * and g[y][x] = weight[2-y][2-x][b][a].
 */
export function winogradFilters(u: usize, weight: usize, inC: i32, outC: i32, flip: bool): void {
  const plane = inC * outC;
  for (let a = 0; a < inC; a++) {
    for (let b = 0; b < outC; b++) {
      const i = a * outC + b;
      // Tap t of g lives at weight + 4 (t · plane + i), or for `flip` at (8 - t) · plane + b · inC + a.
      const first = flip ? at(weight, 8 * plane + b * inC + a) : at(weight, i);
      const step: isize = flip ? -(<isize>plane << 2) : <isize>plane << 2;
      for (let y = 0; y < 4; y++) {
        // Row y of G g: g's row 0, ½(row 0 + row 1 + row 2), ½(row 0 - row 1 + row 2), row 2.
        let t0: f32, t1: f32, t2: f32;
        if (y == 0 || y == 3) {
          const row = first + (y == 0 ? 0 : 6 * step);
          t0 = load<f32>(row);
          t1 = load<f32>(row + step);
          t2 = load<f32>(row + 2 * step);
        } else {
          const sign: f32 = y == 1 ? 1 : -1;
          t0 = HALF * (load<f32>(first) + sign * load<f32>(first + 3 * step) + load<f32>(first + 6 * step));
          t1 = HALF * (load<f32>(first + step) + sign * load<f32>(first + 4 * step) + load<f32>(first + 7 * step));
          t2 = HALF * (load<f32>(first + 2 * step) + sign * load<f32>(first + 5 * step) + load<f32>(first + 8 * step));
        }
        store<f32>(at(u, (4 * y) * plane + i), t0);
        store<f32>(at(u, (4 * y + 1) * plane + i), HALF * (t0 + t1 + t2));
        store<f32>(at(u, (4 * y + 2) * plane + i), HALF * (t0 - t1 + t2));
        store<f32>(at(u, (4 * y + 3) * plane + i), t2);
      }
    }
  }
}

/**
 * The address of pixel (sy, sx) of an image, or `outside` beyond its edge: zeros for the padding
 * read around the input, a discard row for a tile's outputs past an odd edge.
 */
@inline function pixelOr(image: usize, sy: i32, sx: i32, height: i32, width: i32, channels: i32, outside: usize): usize {
  return sy >= 0 && sy < height && sx >= 0 && sx < width ? at(image, (sy * width + sx) * channels) : outside;
}

// Bᵀ applied down one column of 4 window pixels, Bᵀ = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]:
// the 4 results go to v + x·stride, v + (4 + x)·stride, ... (x = the column).
@inline function inputColumn(v: usize, stride: usize, d0: usize, d1: usize, d2: usize, d3: usize): void {
  const a = v128.load(d0);
  const b = v128.load(d1);
  const c = v128.load(d2);
  const d = v128.load(d3);
  v128.store(v, f32x4.sub(a, c));
  v128.store(v + 4 * stride, f32x4.add(b, c));
  v128.store(v + 8 * stride, f32x4.sub(c, b));
  v128.store(v + 12 * stride, f32x4.sub(b, d));
}

// The same combination across one row of 4 (in place): (Bᵀ d) B.
@inline function inputRow(row: usize, stride: usize): void {
  const r0 = v128.load(row);
  const r1 = v128.load(row + stride);
  const r2 = v128.load(row + 2 * stride);
  const r3 = v128.load(row + 3 * stride);
  v128.store(row, f32x4.sub(r0, r2));
  v128.store(row + stride, f32x4.add(r1, r2));
  v128.store(row + 2 * stride, f32x4.sub(r2, r1));
  v128.store(row + 3 * stride, f32x4.sub(r1, r3));
}

/** V[16, tiles, channels] for the tiles of `images` images from `first` on; `zeros` pads. */
function winogradInputs(v: usize, first: usize, images: i32, height: i32, width: i32, channels: i32, zeros: usize): void {
  const tilesY = (height + 1) >> 1;
  const tilesX = (width + 1) >> 1;
  const stride = <usize>(images * tilesY * tilesX * channels) << 2;
  let tile = 0;
  for (let i = 0; i < images; i++) {
    const image = at(first, i * height * width * channels);
    for (let ty = 0; ty < tilesY; ty++) {
      const y = 2 * ty - 1;
      for (let tx = 0; tx < tilesX; tx++) {
        const x = 2 * tx - 1;
        const out = at(v, tile * channels);
        tile++;
        for (let col = 0; col < 4; col++) {
          const d0 = pixelOr(image, y, x + col, height, width, channels, zeros);
          const d1 = pixelOr(image, y + 1, x + col, height, width, channels, zeros);
          const d2 = pixelOr(image, y + 2, x + col, height, width, channels, zeros);
          const d3 = pixelOr(image, y + 3, x + col, height, width, channels, zeros);
          const o = out + <usize>col * stride;
          for (let c = 0; c < channels; c += 4) {
            const q = <usize>c << 2;
            inputColumn(o + q, stride, d0 + q, d1 + q, d2 + q, d3 + q);
          }
        }
        for (let row = 0; row < 4; row++) {
          const r = out + <usize>(4 * row) * stride;
          for (let c = 0; c < channels; c += 4) inputRow(r + (<usize>c << 2), stride);
        }
      }
    }
  }
}

/**
 * Images b0 .. b1 of dst[B, H, W, outC] = the 3x3 convolution of src[B, H, W, inC] with the
 * transformed filters u (winogradFilters); `buffer` holds winogradBufferFloats floats.
 */
export function winogradForward(
  dst: usize, src: usize, u: usize, b0: i32, b1: i32,
  height: i32, width: i32, inC: i32, outC: i32, buffer: usize, scratch: usize, zeros: usize,
): void {
  const tilesY = (height + 1) >> 1;
  const tilesX = (width + 1) >> 1;
  const perImage = tilesY * tilesX;
  const chunk = winogradChunkImages(perImage);
  const most = chunk * perImage;
  const v = buffer;
  const m = at(v, 16 * most * inC);
  const discard = at(m, 16 * most * outC);
  for (let first = b0; first < b1; first += chunk) {
    const images = min(chunk, b1 - first);
    const tiles = images * perImage;
    winogradInputs(v, at(src, first * height * width * inC), images, height, width, inC, zeros);
    for (let xi = 0; xi < 16; xi++) {
      gemm(outC, inC, at(v, xi * tiles * inC), inC, 1, at(u, xi * inC * outC), outC, 1, at(m, xi * tiles * outC), outC, false, 0, tiles, scratch);
    }
    // Aᵀ m A, Aᵀ = [1 1 1 0; 0 1 -1 -1], to the tile's 2x2 outputs (those inside the image).
    const stride = <usize>(tiles * outC) << 2;
    let tile = 0;
    for (let i = 0; i < images; i++) {
      const image = at(dst, (first + i) * height * width * outC);
      for (let ty = 0; ty < tilesY; ty++) {
        for (let tx = 0; tx < tilesX; tx++) {
          const y0 = 2 * ty;
          const x0 = 2 * tx;
          const o00 = pixelOr(image, y0, x0, height, width, outC, discard);
          const o01 = pixelOr(image, y0, x0 + 1, height, width, outC, discard);
          const o10 = pixelOr(image, y0 + 1, x0, height, width, outC, discard);
          const o11 = pixelOr(image, y0 + 1, x0 + 1, height, width, outC, discard);
          const mt = at(m, tile * outC);
          tile++;
          for (let k = 0; k < outC; k += 4) {
            const p = mt + (<usize>k << 2);
            const t0 = f32x4.add(f32x4.add(v128.load(p), v128.load(p + 4 * stride)), v128.load(p + 8 * stride));
            const t1 = f32x4.add(f32x4.add(v128.load(p + stride), v128.load(p + 5 * stride)), v128.load(p + 9 * stride));
            const t2 = f32x4.add(f32x4.add(v128.load(p + 2 * stride), v128.load(p + 6 * stride)), v128.load(p + 10 * stride));
            const t3 = f32x4.add(f32x4.add(v128.load(p + 3 * stride), v128.load(p + 7 * stride)), v128.load(p + 11 * stride));
            const s0 = f32x4.sub(f32x4.sub(v128.load(p + 4 * stride), v128.load(p + 8 * stride)), v128.load(p + 12 * stride));
            const s1 = f32x4.sub(f32x4.sub(v128.load(p + 5 * stride), v128.load(p + 9 * stride)), v128.load(p + 13 * stride));
            const s2 = f32x4.sub(f32x4.sub(v128.load(p + 6 * stride), v128.load(p + 10 * stride)), v128.load(p + 14 * stride));
            const s3 = f32x4.sub(f32x4.sub(v128.load(p + 7 * stride), v128.load(p + 11 * stride)), v128.load(p + 15 * stride));
            const q = <usize>k << 2;
            v128.store(o00 + q, f32x4.add(f32x4.add(t0, t1), t2));
            v128.store(o01 + q, f32x4.sub(f32x4.sub(t1, t2), t3));
            v128.store(o10 + q, f32x4.add(f32x4.add(s0, s1), s2));
            v128.store(o11 + q, f32x4.sub(f32x4.sub(s1, s2), s3));
          }
        }
      }
    }
  }
}

/**
 * The weight gradient of images b0 .. b1 in the transformed domain: du[16, inC, outC] =
 * Σ V[ξ]ᵀ · dM[ξ] (overwritten), where dM = A dy Aᵀ (the adjoint of the output transform) of the
 * output gradient dout. winogradFilterGradient turns it into the weight gradient.
 */
export function winogradWeight(
  du: usize, src: usize, dout: usize, b0: i32, b1: i32,
  height: i32, width: i32, inC: i32, outC: i32, buffer: usize, scratch: usize, zeros: usize,
): void {
  memory.fill(du, 0, <usize>(16 * inC * outC) << 2);
  const tilesY = (height + 1) >> 1;
  const tilesX = (width + 1) >> 1;
  const perImage = tilesY * tilesX;
  const chunk = winogradChunkImages(perImage);
  const most = chunk * perImage;
  const v = buffer;
  const dm = at(v, 16 * most * inC);
  for (let first = b0; first < b1; first += chunk) {
    const images = min(chunk, b1 - first);
    const tiles = images * perImage;
    winogradInputs(v, at(src, first * height * width * inC), images, height, width, inC, zeros);
    const stride = <usize>(tiles * outC) << 2;
    let tile = 0;
    for (let i = 0; i < images; i++) {
      const image = at(dout, (first + i) * height * width * outC);
      for (let ty = 0; ty < tilesY; ty++) {
        for (let tx = 0; tx < tilesX; tx++) {
          const y0 = 2 * ty;
          const x0 = 2 * tx;
          const g00 = pixelOr(image, y0, x0, height, width, outC, zeros);
          const g01 = pixelOr(image, y0, x0 + 1, height, width, outC, zeros);
          const g10 = pixelOr(image, y0 + 1, x0, height, width, outC, zeros);
          const g11 = pixelOr(image, y0 + 1, x0 + 1, height, width, outC, zeros);
          const mt = at(dm, tile * outC);
          tile++;
          for (let k = 0; k < outC; k += 4) {
            const q = <usize>k << 2;
            const y00 = v128.load(g00 + q);
            const y01 = v128.load(g01 + q);
            const y10 = v128.load(g10 + q);
            const y11 = v128.load(g11 + q);
            // A dy, A = [1 0; 1 1; 1 -1; 0 -1]: rows (p, q); then each row to (p, p+q, p-q, -q).
            const zero = f32x4.splat(0);
            const p0 = y00, q0 = y01;
            const p1 = f32x4.add(y00, y10), q1 = f32x4.add(y01, y11);
            const p2 = f32x4.sub(y00, y10), q2 = f32x4.sub(y01, y11);
            const p3 = f32x4.sub(zero, y10), q3 = f32x4.sub(zero, y11);
            const d = mt + q;
            v128.store(d, p0); v128.store(d + stride, f32x4.add(p0, q0)); v128.store(d + 2 * stride, f32x4.sub(p0, q0)); v128.store(d + 3 * stride, f32x4.sub(zero, q0));
            v128.store(d + 4 * stride, p1); v128.store(d + 5 * stride, f32x4.add(p1, q1)); v128.store(d + 6 * stride, f32x4.sub(p1, q1)); v128.store(d + 7 * stride, f32x4.sub(zero, q1));
            v128.store(d + 8 * stride, p2); v128.store(d + 9 * stride, f32x4.add(p2, q2)); v128.store(d + 10 * stride, f32x4.sub(p2, q2)); v128.store(d + 11 * stride, f32x4.sub(zero, q2));
            v128.store(d + 12 * stride, p3); v128.store(d + 13 * stride, f32x4.add(p3, q3)); v128.store(d + 14 * stride, f32x4.sub(p3, q3)); v128.store(d + 15 * stride, f32x4.sub(zero, q3));
          }
        }
      }
    }
    for (let xi = 0; xi < 16; xi++) {
      // du[ξ][inC, outC] += V[ξ]ᵀ · dM[ξ]
      gemm(outC, tiles, at(v, xi * tiles * inC), 1, inC, at(dm, xi * tiles * outC), outC, 1, at(du, xi * inC * outC), outC, true, 0, inC, scratch);
    }
  }
}

/**
 * dweight[3, 3, inC, outC] += Gᵀ dU G for dU the sum of `parts` transformed gradients
 * [16, inC, outC] placed partBytes apart from `du`, added in order: the adjoint of the filter
 * transform, Gᵀ = [1 ½ ½ 0; 0 ½ -½ 0; 0 ½ ½ 1].
 */
export function winogradFilterGradient(dweight: usize, du: usize, partBytes: i32, parts: i32, inC: i32, outC: i32): void {
  const plane = inC * outC;
  for (let i = 0; i < plane; i++) {
    // Gᵀ dU, one column x of dU at a time: rows t0 (= u0 + ½(u1 + u2)), t1 (= ½(u1 - u2)), t2 (= ½(u1 + u2) + u3).
    let a0: f32 = 0, a1: f32 = 0, a2: f32 = 0, a3: f32 = 0;
    let b0: f32 = 0, b1: f32 = 0, b2: f32 = 0, b3: f32 = 0;
    let c0: f32 = 0, c1: f32 = 0, c2: f32 = 0, c3: f32 = 0;
    for (let x = 0; x < 4; x++) {
      let u0: f32 = 0, u1: f32 = 0, u2: f32 = 0, u3: f32 = 0;
      for (let p = 0; p < parts; p++) {
        const base = du + <usize>p * <usize>partBytes;
        u0 += load<f32>(at(base, x * plane + i));
        u1 += load<f32>(at(base, (4 + x) * plane + i));
        u2 += load<f32>(at(base, (8 + x) * plane + i));
        u3 += load<f32>(at(base, (12 + x) * plane + i));
      }
      const t0 = u0 + HALF * (u1 + u2);
      const t1 = HALF * (u1 - u2);
      const t2 = HALF * (u1 + u2) + u3;
      if (x == 0) { a0 = t0; b0 = t1; c0 = t2; }
      else if (x == 1) { a1 = t0; b1 = t1; c1 = t2; }
      else if (x == 2) { a2 = t0; b2 = t1; c2 = t2; }
      else { a3 = t0; b3 = t1; c3 = t2; }
    }
    // Then (Gᵀ dU) G across each row (r0 r1 r2 r3) -> (r0 + ½(r1 + r2), ½(r1 - r2), ½(r1 + r2) + r3).
    addFilterRow(at(dweight, i), plane, a0, a1, a2, a3);
    addFilterRow(at(dweight, 3 * plane + i), plane, b0, b1, b2, b3);
    addFilterRow(at(dweight, 6 * plane + i), plane, c0, c1, c2, c3);
  }
}

@inline function addFilterRow(w: usize, plane: i32, r0: f32, r1: f32, r2: f32, r3: f32): void {
  const step = <usize>plane << 2;
  store<f32>(w, load<f32>(w) + r0 + HALF * (r1 + r2));
  store<f32>(w + step, load<f32>(w + step) + HALF * (r1 - r2));
  store<f32>(w + 2 * step, load<f32>(w + 2 * step) + HALF * (r1 + r2) + r3);
}
