// Winograd F(4x4, 3x3): the 3x3 convolutions with 4x fewer multiplications than direct.
// Each 4x4 block of outputs (a tile) is Aᵀ [Σ_c (G g Gᵀ) ⊙ (Bᵀ d B)] A over the 6x6 input window
// d around it (Lavin & Gray 2016, points 0, ±1, ±2). With V[tile][ξ][c] = Bᵀ d B and
// U[ξ][c][o] = G g Gᵀ (ξ = 6i + j), the sum over channels is 36 matrix products
// M[ξ] = V[ξ] · U[ξ], which read and write V and M with a stride (each tile's transform lies in
// one place). The backend uses it for 3x3 convolutions whose channel counts are multiples of 4
// and at least 8 (the same algorithm as the native backend's; the channel loops here are f32x4).
//
// Bᵀ = [4 0 -5 0 1 0; 0 -4 -4 1 1 0; 0 4 -4 -1 1 0; 0 -2 -1 2 1 0; 0 2 -1 -2 1 0; 0 4 0 -5 0 1],
// G = [¼ 0 0; -⅙ -⅙ -⅙; -⅙ ⅙ -⅙; 1/24 1/12 ⅙; 1/24 -1/12 ⅙; 0 0 1],
// Aᵀ = [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 0; 0 1 -1 8 -8 1].

import { gemm } from './gemm';
import { at } from './addresses';

/** Tiles per chunk of images: a chunk's V and M stay in cache. */
const WINOGRAD_CHUNK_TILES: i32 = 64;
const TILE: i32 = 4;
const POSITIONS: i32 = 36;

/** Images per chunk: whole images, at least WINOGRAD_CHUNK_TILES tiles (perImage tiles each). */
@inline function winogradChunkImages(perImage: i32): i32 {
  return (WINOGRAD_CHUNK_TILES + perImage - 1) / perImage;
}

@inline function tilesAlong(size: i32): i32 {
  return (size + TILE - 1) >> 2;
}

/** Floats of the per-thread buffer winogradForward and winogradWeight need. */
export function winogradBufferFloats(height: i32, width: i32, inC: i32, outC: i32): i32 {
  const perImage = tilesAlong(height) * tilesAlong(width);
  return POSITIONS * winogradChunkImages(perImage) * perImage * (inC + outC) + outC;
}

@inline function splat(x: f32): v128 {
  return f32x4.splat(x);
}

// ---- One-dimensional transforms of six (or four) vectors ----

// y = Bᵀ x for x at p, p + s, ..., p + 5s (byte strides), into q, q + t, ..., q + 5t; x may be y.
@inline function inputTransform(q: usize, t: usize, p: usize, s: usize): void {
  const x0 = v128.load(p), x1 = v128.load(p + s), x2 = v128.load(p + 2 * s);
  const x3 = v128.load(p + 3 * s), x4 = v128.load(p + 4 * s), x5 = v128.load(p + 5 * s);
  const four = splat(4), five = splat(5), two = splat(2);
  v128.store(q, f32x4.add(f32x4.sub(f32x4.mul(four, x0), f32x4.mul(five, x2)), x4));
  v128.store(q + t, f32x4.sub(f32x4.add(x3, x4), f32x4.mul(four, f32x4.add(x1, x2))));
  v128.store(q + 2 * t, f32x4.add(f32x4.mul(four, f32x4.sub(x1, x2)), f32x4.sub(x4, x3)));
  v128.store(q + 3 * t, f32x4.add(f32x4.mul(two, f32x4.sub(x3, x1)), f32x4.sub(x4, x2)));
  v128.store(q + 4 * t, f32x4.add(f32x4.mul(two, f32x4.sub(x1, x3)), f32x4.sub(x4, x2)));
  v128.store(q + 5 * t, f32x4.add(f32x4.sub(f32x4.mul(four, x1), f32x4.mul(five, x3)), x5));
}

// y = Aᵀ x: 4 outputs of x at p, ..., p + 5s into q0 .. q3; the outputs may overwrite x.
@inline function outputTransform(q0: usize, q1: usize, q2: usize, q3: usize, p: usize, s: usize): void {
  const x0 = v128.load(p), x1 = v128.load(p + s), x2 = v128.load(p + 2 * s);
  const x3 = v128.load(p + 3 * s), x4 = v128.load(p + 4 * s), x5 = v128.load(p + 5 * s);
  const p12 = f32x4.add(x1, x2), m12 = f32x4.sub(x1, x2), p34 = f32x4.add(x3, x4), m34 = f32x4.sub(x3, x4);
  v128.store(q0, f32x4.add(f32x4.add(x0, p12), p34));
  v128.store(q1, f32x4.add(m12, f32x4.mul(splat(2), m34)));
  v128.store(q2, f32x4.add(p12, f32x4.mul(splat(4), p34)));
  v128.store(q3, f32x4.add(f32x4.add(m12, f32x4.mul(splat(8), m34)), x5));
}

// y = A x (the adjoint of the output transform): 6 values of x0 .. x3 into q, q + t, ..., q + 5t.
@inline function outputGradientTransform(q: usize, t: usize, x0: v128, x1: v128, x2: v128, x3: v128): void {
  const even = f32x4.add(x0, x2), odd = f32x4.add(x1, x3);
  const even4 = f32x4.add(x0, f32x4.mul(splat(4), x2)), odd8 = f32x4.add(f32x4.mul(splat(2), x1), f32x4.mul(splat(8), x3));
  v128.store(q, x0);
  v128.store(q + t, f32x4.add(even, odd));
  v128.store(q + 2 * t, f32x4.sub(even, odd));
  v128.store(q + 3 * t, f32x4.add(even4, odd8));
  v128.store(q + 4 * t, f32x4.sub(even4, odd8));
  v128.store(q + 5 * t, x3);
}

// G x: 6 values of the 3 vectors x0, x1, x2 into q, q + t, ..., q + 5t.
@inline function filterTransform(q: usize, t: usize, x0: v128, x1: v128, x2: v128): void {
  const sixth = splat(<f32>1 / 6), twelfth = splat(<f32>1 / 12), twentyfourth = splat(<f32>1 / 24);
  const outer = f32x4.add(x0, x2);
  v128.store(q, f32x4.mul(splat(0.25), x0));
  v128.store(q + t, f32x4.mul(f32x4.neg(sixth), f32x4.add(outer, x1)));
  v128.store(q + 2 * t, f32x4.mul(f32x4.neg(sixth), f32x4.sub(outer, x1)));
  const ends = f32x4.add(f32x4.mul(twentyfourth, x0), f32x4.mul(sixth, x2));
  v128.store(q + 3 * t, f32x4.add(ends, f32x4.mul(twelfth, x1)));
  v128.store(q + 4 * t, f32x4.sub(ends, f32x4.mul(twelfth, x1)));
  v128.store(q + 5 * t, x2);
}

// ---- The filters ----

/**
 * u[36, inC, outC] = G g Gᵀ for each filter g of weight [3, 3, inC, outC], four filters b at a
 * time. With `flip` (the input gradient: the forward convolution of the output gradient with
 * the filters turned 180 degrees and in/out exchanged) weight is [3, 3, outC, inC] and
 * g[y][x] = weight[2-y][2-x][b][a]. `temp` holds 18 vectors.
 */
export function winogradFilters(u: usize, weight: usize, inC: i32, outC: i32, flip: bool): void {
  const plane = inC * outC;
  const temp = at(u, POSITIONS * plane);
  const vector: usize = 16;
  for (let a = 0; a < inC; a++) {
    for (let b = 0; b < outC; b += 4) {
      // G g: for each column x of g, its 6 transformed rows into temp[6x + i].
      for (let x = 0; x < 3; x++) {
        const g0 = filterTap(weight, 0 * 3 + x, a, b, inC, outC, plane, flip);
        const g1 = filterTap(weight, 1 * 3 + x, a, b, inC, outC, plane, flip);
        const g2 = filterTap(weight, 2 * 3 + x, a, b, inC, outC, plane, flip);
        filterTransform(temp + <usize>(6 * x) * vector, vector, g0, g1, g2);
      }
      // (G g) Gᵀ: for each row i, the 3 values of its columns into u[6i + j].
      for (let i = 0; i < 6; i++) {
        const row = temp + <usize>i * vector;
        filterTransform(at(u, 6 * i * plane + a * outC + b), <usize>plane << 2, v128.load(row), v128.load(row + 6 * vector), v128.load(row + 12 * vector));
      }
    }
  }
}

// Tap `tap` of the filters (a, b .. b + 3).
@inline function filterTap(weight: usize, tap: i32, a: i32, b: i32, inC: i32, outC: i32, plane: i32, flip: bool): v128 {
  if (!flip) return v128.load(at(weight, tap * plane + a * outC + b));
  const first = at(weight, (8 - tap) * plane + b * inC + a);
  const step = <usize>inC << 2;
  let g = f32x4.splat(load<f32>(first));
  g = f32x4.replace_lane(g, 1, load<f32>(first + step));
  g = f32x4.replace_lane(g, 2, load<f32>(first + 2 * step));
  return f32x4.replace_lane(g, 3, load<f32>(first + 3 * step));
}

/** Floats winogradFilters writes: the transformed filters and its working space. */
export function winogradFiltersFloats(inC: i32, outC: i32): i32 {
  return POSITIONS * inC * outC + 18 * 4;
}

// ---- The tiles ----

/**
 * The address of pixel (sy, sx) of an image, or `outside` beyond its edge: zeros for the padding
 * read around the input, a discard row for a tile's outputs past the image's edge.
 */
@inline function pixelOr(image: usize, sy: i32, sx: i32, height: i32, width: i32, channels: i32, outside: usize): usize {
  return sy >= 0 && sy < height && sx >= 0 && sx < width ? at(image, (sy * width + sx) * channels) : outside;
}

/** V[tiles, 36, channels] for the tiles of `images` images from `first` on; `zeros` pads. */
function winogradInputs(v: usize, first: usize, images: i32, height: i32, width: i32, channels: i32, zeros: usize): void {
  const tilesY = tilesAlong(height);
  const tilesX = tilesAlong(width);
  const position = <usize>channels << 2;
  let tile = 0;
  for (let i = 0; i < images; i++) {
    const image = at(first, i * height * width * channels);
    for (let ty = 0; ty < tilesY; ty++) {
      const y = TILE * ty - 1;
      for (let tx = 0; tx < tilesX; tx++) {
        const x = TILE * tx - 1;
        const out = at(v, tile * POSITIONS * channels);
        tile++;
        // Bᵀ d, column by column: window column j's 6 pixels into positions j, 6 + j, ..., 30 + j.
        for (let j = 0; j < 6; j++) {
          const d0 = pixelOr(image, y, x + j, height, width, channels, zeros);
          const d1 = pixelOr(image, y + 1, x + j, height, width, channels, zeros);
          const d2 = pixelOr(image, y + 2, x + j, height, width, channels, zeros);
          const d3 = pixelOr(image, y + 3, x + j, height, width, channels, zeros);
          const d4 = pixelOr(image, y + 4, x + j, height, width, channels, zeros);
          const d5 = pixelOr(image, y + 5, x + j, height, width, channels, zeros);
          const o = out + <usize>j * position;
          for (let c = 0; c < channels; c += 4) {
            const q = <usize>c << 2;
            const x0 = v128.load(d0 + q), x1 = v128.load(d1 + q), x2 = v128.load(d2 + q);
            const x3 = v128.load(d3 + q), x4 = v128.load(d4 + q), x5 = v128.load(d5 + q);
            storeInputColumn(o + q, 6 * position, x0, x1, x2, x3, x4, x5);
          }
        }
        // Then (Bᵀ d) B across each row, in place.
        for (let row = 0; row < 6; row++) {
          const r = out + <usize>(6 * row) * position;
          for (let c = 0; c < channels; c += 4) inputTransform(r + (<usize>c << 2), position, r + (<usize>c << 2), position);
        }
      }
    }
  }
}

@inline function storeInputColumn(q: usize, t: usize, x0: v128, x1: v128, x2: v128, x3: v128, x4: v128, x5: v128): void {
  const four = splat(4), five = splat(5), two = splat(2);
  v128.store(q, f32x4.add(f32x4.sub(f32x4.mul(four, x0), f32x4.mul(five, x2)), x4));
  v128.store(q + t, f32x4.sub(f32x4.add(x3, x4), f32x4.mul(four, f32x4.add(x1, x2))));
  v128.store(q + 2 * t, f32x4.add(f32x4.mul(four, f32x4.sub(x1, x2)), f32x4.sub(x4, x3)));
  v128.store(q + 3 * t, f32x4.add(f32x4.mul(two, f32x4.sub(x3, x1)), f32x4.sub(x4, x2)));
  v128.store(q + 4 * t, f32x4.add(f32x4.mul(two, f32x4.sub(x1, x3)), f32x4.sub(x4, x2)));
  v128.store(q + 5 * t, f32x4.add(f32x4.sub(f32x4.mul(four, x1), f32x4.mul(five, x3)), x5));
}

/**
 * Images b0 .. b1 of dst[B, H, W, outC] = the 3x3 convolution of src[B, H, W, inC] with the
 * transformed filters u (winogradFilters); `buffer` holds winogradBufferFloats floats.
 */
export function winogradForward(
  dst: usize, src: usize, u: usize, b0: i32, b1: i32,
  height: i32, width: i32, inC: i32, outC: i32, buffer: usize, scratch: usize, zeros: usize,
): void {
  const tilesY = tilesAlong(height);
  const tilesX = tilesAlong(width);
  const perImage = tilesY * tilesX;
  const chunk = winogradChunkImages(perImage);
  const most = chunk * perImage;
  const v = buffer;
  const m = at(v, POSITIONS * most * inC);
  const discard = at(m, POSITIONS * most * outC);
  const position = <usize>outC << 2;
  for (let first = b0; first < b1; first += chunk) {
    const images = min(chunk, b1 - first);
    const tiles = images * perImage;
    winogradInputs(v, at(src, first * height * width * inC), images, height, width, inC, zeros);
    for (let xi = 0; xi < POSITIONS; xi++) {
      gemm(outC, inC, at(v, xi * inC), POSITIONS * inC, 1, at(u, xi * inC * outC), outC, 1, at(m, xi * outC), POSITIONS * outC, false, 0, tiles, scratch);
    }
    // Aᵀ m A to the tile's 4x4 outputs (those inside the image).
    let tile = 0;
    for (let i = 0; i < images; i++) {
      const image = at(dst, (first + i) * height * width * outC);
      for (let ty = 0; ty < tilesY; ty++) {
        for (let tx = 0; tx < tilesX; tx++) {
          const mt = at(m, tile * POSITIONS * outC);
          tile++;
          // Aᵀ m, column by column, in place: column j's 6 values -> its first 4 rows.
          for (let j = 0; j < 6; j++) {
            const col = mt + <usize>j * position;
            for (let k = 0; k < outC; k += 4) {
              const p = col + (<usize>k << 2);
              outputTransform(p, p + 6 * position, p + 12 * position, p + 18 * position, p, 6 * position);
            }
          }
          // Then (Aᵀ m) A across each of those rows, to the output pixels.
          for (let r = 0; r < 4; r++) {
            const y = TILE * ty + r;
            const x = TILE * tx;
            const o0 = pixelOr(image, y, x, height, width, outC, discard);
            const o1 = pixelOr(image, y, x + 1, height, width, outC, discard);
            const o2 = pixelOr(image, y, x + 2, height, width, outC, discard);
            const o3 = pixelOr(image, y, x + 3, height, width, outC, discard);
            const row = mt + <usize>(6 * r) * position;
            for (let k = 0; k < outC; k += 4) {
              const q = <usize>k << 2;
              outputTransform(o0 + q, o1 + q, o2 + q, o3 + q, row + q, position);
            }
          }
        }
      }
    }
  }
}

/**
 * The weight gradient of images b0 .. b1 in the transformed domain: du[36, inC, outC] =
 * Σ V[ξ]ᵀ · dM[ξ] (overwritten), where dM = A dy Aᵀ (the adjoint of the output transform) of the
 * output gradient dout. winogradFilterGradient turns it into the weight gradient.
 */
export function winogradWeight(
  du: usize, src: usize, dout: usize, b0: i32, b1: i32,
  height: i32, width: i32, inC: i32, outC: i32, buffer: usize, scratch: usize, zeros: usize,
): void {
  memory.fill(du, 0, <usize>(POSITIONS * inC * outC) << 2);
  const tilesY = tilesAlong(height);
  const tilesX = tilesAlong(width);
  const perImage = tilesY * tilesX;
  const chunk = winogradChunkImages(perImage);
  const most = chunk * perImage;
  const v = buffer;
  const dm = at(v, POSITIONS * most * inC);
  const position = <usize>outC << 2;
  for (let first = b0; first < b1; first += chunk) {
    const images = min(chunk, b1 - first);
    const tiles = images * perImage;
    winogradInputs(v, at(src, first * height * width * inC), images, height, width, inC, zeros);
    let tile = 0;
    for (let i = 0; i < images; i++) {
      const image = at(dout, (first + i) * height * width * outC);
      for (let ty = 0; ty < tilesY; ty++) {
        for (let tx = 0; tx < tilesX; tx++) {
          const mt = at(dm, tile * POSITIONS * outC);
          tile++;
          // A dy, column by column: the tile's column x (4 gradients) -> positions x, 6 + x, ..., 30 + x.
          for (let x = 0; x < 4; x++) {
            const y = TILE * ty;
            const sx = TILE * tx + x;
            const g0 = pixelOr(image, y, sx, height, width, outC, zeros);
            const g1 = pixelOr(image, y + 1, sx, height, width, outC, zeros);
            const g2 = pixelOr(image, y + 2, sx, height, width, outC, zeros);
            const g3 = pixelOr(image, y + 3, sx, height, width, outC, zeros);
            const col = mt + <usize>x * position;
            for (let k = 0; k < outC; k += 4) {
              const q = <usize>k << 2;
              outputGradientTransform(col + q, 6 * position, v128.load(g0 + q), v128.load(g1 + q), v128.load(g2 + q), v128.load(g3 + q));
            }
          }
          // Then (A dy) Aᵀ across each of the 6 rows, in place: 4 values -> 6.
          for (let r = 0; r < 6; r++) {
            const row = mt + <usize>(6 * r) * position;
            for (let k = 0; k < outC; k += 4) {
              const p = row + (<usize>k << 2);
              outputGradientTransform(p, position, v128.load(p), v128.load(p + position), v128.load(p + 2 * position), v128.load(p + 3 * position));
            }
          }
        }
      }
    }
    for (let xi = 0; xi < POSITIONS; xi++) {
      // du[ξ][inC, outC] += V[ξ]ᵀ · dM[ξ]
      gemm(outC, tiles, at(v, xi * inC), 1, POSITIONS * inC, at(dm, xi * outC), POSITIONS * outC, 1, at(du, xi * inC * outC), outC, true, 0, inC, scratch);
    }
  }
}

/**
 * dweight[3, 3, inC, outC] += Gᵀ dU G for dU the sum of `parts` transformed gradients
 * [36, inC, outC] placed partBytes apart from `du`, added in order: the adjoint of the filter
 * transform, Gᵀ = [¼ -⅙ -⅙ 1/24 1/24 0; 0 -⅙ ⅙ 1/12 -1/12 0; 0 -⅙ -⅙ ⅙ ⅙ 1]. Four (a, b) at a
 * time; the first part's dU is overwritten.
 */
export function winogradFilterGradient(dweight: usize, du: usize, partBytes: i32, parts: i32, inC: i32, outC: i32): void {
  const plane = inC * outC;
  const row = <usize>plane << 2;
  for (let i = 0; i < plane; i += 4) {
    const base = at(du, i);
    // Gᵀ dU, column by column: column x's 6 values (summed over the parts) -> rows 0 .. 2 of it.
    for (let x = 0; x < 6; x++) {
      const p = base + <usize>x * row;
      const u0 = partSum(p, partBytes, parts), u1 = partSum(p + 6 * row, partBytes, parts), u2 = partSum(p + 12 * row, partBytes, parts);
      const u3 = partSum(p + 18 * row, partBytes, parts), u4 = partSum(p + 24 * row, partBytes, parts), u5 = partSum(p + 30 * row, partBytes, parts);
      filterGradientTransform(p, p + 6 * row, p + 12 * row, u0, u1, u2, u3, u4, u5, false);
    }
    // Then (Gᵀ dU) G across each of those 3 rows, added to the weight gradient's taps.
    for (let r = 0; r < 3; r++) {
      const p = base + <usize>(6 * r) * row;
      const w = at(dweight, 3 * r * plane + i);
      filterGradientTransform(w, w + row, w + 2 * row, v128.load(p), v128.load(p + row), v128.load(p + 2 * row), v128.load(p + 3 * row), v128.load(p + 4 * row), v128.load(p + 5 * row), true);
    }
  }
}

@inline function partSum(p: usize, partBytes: i32, parts: i32): v128 {
  let sum = v128.load(p);
  for (let part = 1; part < parts; part++) sum = f32x4.add(sum, v128.load(p + <usize>part * <usize>partBytes));
  return sum;
}

// Gᵀ x: 3 values of the 6 vectors into q0, q1, q2 (added to what is there with `add`).
@inline function filterGradientTransform(q0: usize, q1: usize, q2: usize, x0: v128, x1: v128, x2: v128, x3: v128, x4: v128, x5: v128, add: bool): void {
  const sixth = splat(<f32>1 / 6), twelfth = splat(<f32>1 / 12), twentyfourth = splat(<f32>1 / 24);
  const p12 = f32x4.add(x1, x2), p34 = f32x4.add(x3, x4);
  let y0 = f32x4.add(f32x4.sub(f32x4.mul(splat(0.25), x0), f32x4.mul(sixth, p12)), f32x4.mul(twentyfourth, p34));
  let y1 = f32x4.add(f32x4.mul(sixth, f32x4.sub(x2, x1)), f32x4.mul(twelfth, f32x4.sub(x3, x4)));
  let y2 = f32x4.add(f32x4.mul(sixth, f32x4.sub(p34, p12)), x5);
  if (add) {
    y0 = f32x4.add(v128.load(q0), y0);
    y1 = f32x4.add(v128.load(q1), y1);
    y2 = f32x4.add(v128.load(q2), y2);
  }
  v128.store(q0, y0);
  v128.store(q1, y1);
  v128.store(q2, y2);
}
