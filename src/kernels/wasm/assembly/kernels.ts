// The WebAssembly kernels, in AssemblyScript. Compiled twice by scripts/build-wasm.mjs: with
// SIMD128 (kernels.wasm) and with relaxed SIMD too (kernels-relaxed.wasm), where the matrix
// product's multiply-add is one fused instruction. Every pointer is a byte offset into the
// shared linear memory; every size counts elements. Matrices are row-major; a matrix argument
// is given as (pointer, row stride, column stride) so one routine serves plain and transposed
// operands: element (i, j) lives at ptr + 4 * (i * rowStride + j * colStride).

// Register tile of the matrix product: MR rows x NR columns of C, held in 8 f32x4 registers
// (V8 has 16 xmm registers; larger tiles spill). KC x NC is the block of B packed at a time.
const MR: i32 = 4;
const NR: i32 = 8;
const KC: i32 = 256;
const NC: i32 = 512;

/** First byte after the module's static data: the caller's buffers go from here. */
export function heapBase(): usize {
  return __heap_base;
}

/** Floats of scratch memory one thread needs for gemm: packed B, packed A and an edge tile. */
export function gemmScratchFloats(): i32 {
  return KC * NC + KC * MR + MR * NR;
}

@inline function madd(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_madd(a, b, c);
  return f32x4.add(f32x4.mul(a, b), c);
}

@inline function at(ptr: usize, index: i32): usize {
  return ptr + (<usize>index << 2);
}

// Packs B[p0 .. p0+kc, j0 .. j0+nc) into panels of NR columns, each panel kc rows of NR
// contiguous floats (zero-padded past column nc), so the micro-kernel reads B sequentially.
function packB(dst: usize, b: usize, rsB: i32, csB: i32, p0: i32, kc: i32, j0: i32, nc: i32): void {
  const panels = (nc + NR - 1) / NR;
  for (let panel = 0; panel < panels; panel++) {
    const jStart = j0 + panel * NR;
    const width = min(NR, j0 + nc - jStart);
    const out = at(dst, panel * kc * NR);
    if (width == NR && csB == 1) {
      for (let p = 0; p < kc; p++) {
        const src = at(b, (p0 + p) * rsB + jStart);
        v128.store(at(out, p * NR), v128.load(src));
        v128.store(at(out, p * NR), v128.load(src, 16), 16);
      }
    } else {
      // Column by column: reads a transposed B contiguously.
      for (let jj = 0; jj < NR; jj++) {
        if (jj < width) {
          const src = at(b, p0 * rsB + (jStart + jj) * csB);
          for (let p = 0; p < kc; p++) store<f32>(at(out, p * NR + jj), load<f32>(at(src, p * rsB)));
        } else {
          for (let p = 0; p < kc; p++) store<f32>(at(out, p * NR + jj), 0);
        }
      }
    }
  }
}

// Packs A[i0 .. i0+mr, p0 .. p0+kc) as kc groups of MR floats (zero rows past mr).
function packA(dst: usize, a: usize, rsA: i32, csA: i32, i0: i32, mr: i32, p0: i32, kc: i32): void {
  if (rsA == 1 && mr == MR) {
    // A transposed (Aᵀ stored row-major): each group of MR floats is contiguous already.
    const src = at(a, i0 + p0 * csA);
    for (let p = 0; p < kc; p++) v128.store(at(dst, p * MR), v128.load(at(src, p * csA)));
    return;
  }
  for (let r = 0; r < MR; r++) {
    if (r < mr) {
      const src = at(a, (i0 + r) * rsA + p0 * csA);
      for (let p = 0; p < kc; p++) store<f32>(at(dst, p * MR + r), load<f32>(at(src, p * csA)));
    } else {
      for (let p = 0; p < kc; p++) store<f32>(at(dst, p * MR + r), 0);
    }
  }
}

// C[4 x 8] (+)= packedA[kc x 4]ᵀ · packedB[kc x 8]; C rows are ldc floats apart.
// The K loop is deliberately not unrolled: unrolling made V8's code slower.
@inline function microKernel(kc: i32, pa: usize, pb: usize, c: usize, ldc: i32, accumulate: bool): void {
  const row = <usize>ldc << 2;
  let c00 = f32x4.splat(0), c01 = f32x4.splat(0), c10 = f32x4.splat(0), c11 = f32x4.splat(0);
  let c20 = f32x4.splat(0), c21 = f32x4.splat(0), c30 = f32x4.splat(0), c31 = f32x4.splat(0);
  if (accumulate) {
    c00 = v128.load(c);
    c01 = v128.load(c, 16);
    c10 = v128.load(c + row);
    c11 = v128.load(c + row, 16);
    c20 = v128.load(c + 2 * row);
    c21 = v128.load(c + 2 * row, 16);
    c30 = v128.load(c + 3 * row);
    c31 = v128.load(c + 3 * row, 16);
  }
  for (let p = 0; p < kc; p++) {
    const b0 = v128.load(pb);
    const b1 = v128.load(pb, 16);
    let a = v128.load32_splat(pa);
    c00 = madd(a, b0, c00);
    c01 = madd(a, b1, c01);
    a = v128.load32_splat(pa, 4);
    c10 = madd(a, b0, c10);
    c11 = madd(a, b1, c11);
    a = v128.load32_splat(pa, 8);
    c20 = madd(a, b0, c20);
    c21 = madd(a, b1, c21);
    a = v128.load32_splat(pa, 12);
    c30 = madd(a, b0, c30);
    c31 = madd(a, b1, c31);
    pa += MR << 2;
    pb += NR << 2;
  }
  v128.store(c, c00);
  v128.store(c, c01, 16);
  v128.store(c + row, c10);
  v128.store(c + row, c11, 16);
  v128.store(c + 2 * row, c20);
  v128.store(c + 2 * row, c21, 16);
  v128.store(c + 3 * row, c30);
  v128.store(c + 3 * row, c31, 16);
}

// The same product for an A whose rows are contiguous (csA == 1): reads the four rows of A in
// place, four floats apart in p, instead of from a packed copy. Saves the packing, which costs
// as much as the arithmetic when C is narrow (a convolution with 32 filters).
@inline function microKernelRows(kc: i32, a: usize, lda: i32, pb: usize, c: usize, ldc: i32, accumulate: bool): void {
  const row = <usize>ldc << 2;
  const aRow = <usize>lda << 2;
  let c00 = f32x4.splat(0), c01 = f32x4.splat(0), c10 = f32x4.splat(0), c11 = f32x4.splat(0);
  let c20 = f32x4.splat(0), c21 = f32x4.splat(0), c30 = f32x4.splat(0), c31 = f32x4.splat(0);
  if (accumulate) {
    c00 = v128.load(c);
    c01 = v128.load(c, 16);
    c10 = v128.load(c + row);
    c11 = v128.load(c + row, 16);
    c20 = v128.load(c + 2 * row);
    c21 = v128.load(c + 2 * row, 16);
    c30 = v128.load(c + 3 * row);
    c31 = v128.load(c + 3 * row, 16);
  }
  let a0 = a;
  const a1 = aRow, a2 = 2 * aRow, a3 = 3 * aRow;
  for (let p = 0; p < kc; p++) {
    const b0 = v128.load(pb);
    const b1 = v128.load(pb, 16);
    let x = v128.load32_splat(a0);
    c00 = madd(x, b0, c00);
    c01 = madd(x, b1, c01);
    x = v128.load32_splat(a0 + a1);
    c10 = madd(x, b0, c10);
    c11 = madd(x, b1, c11);
    x = v128.load32_splat(a0 + a2);
    c20 = madd(x, b0, c20);
    c21 = madd(x, b1, c21);
    x = v128.load32_splat(a0 + a3);
    c30 = madd(x, b0, c30);
    c31 = madd(x, b1, c31);
    a0 += 4;
    pb += NR << 2;
  }
  v128.store(c, c00);
  v128.store(c, c01, 16);
  v128.store(c + row, c10);
  v128.store(c + row, c11, 16);
  v128.store(c + 2 * row, c20);
  v128.store(c + 2 * row, c21, 16);
  v128.store(c + 3 * row, c30);
  v128.store(c + 3 * row, c31, 16);
}

/**
 * Rows rowStart .. rowEnd of C[m x n] (+)= A[m x k] · B[k x n], with A and B given by their
 * strides (so either may be transposed) and C's rows ldc floats apart (ldc > n computes a block
 * of columns of a wider C). Threads call it on disjoint row or column ranges, each with its own
 * scratch of gemmScratchFloats() floats. K is split into blocks of even size.
 */
export function gemm(
  n: i32, k: i32,
  a: usize, rsA: i32, csA: i32,
  b: usize, rsB: i32, csB: i32,
  c: usize, ldc: i32, accumulate: bool,
  rowStart: i32, rowEnd: i32, scratch: usize,
): void {
  if (rowEnd <= rowStart || n <= 0) return;
  if (k == 0) {
    if (!accumulate) for (let i = rowStart; i < rowEnd; i++) memory.fill(at(c, i * ldc), 0, <usize>n << 2);
    return;
  }
  const packedB = scratch;
  const packedA = at(scratch, KC * NC);
  const tile = at(packedA, KC * MR);
  const kBlocks = (k + KC - 1) / KC;
  const kStep = (k + kBlocks - 1) / kBlocks;
  for (let jc = 0; jc < n; jc += NC) {
    const nc = min(NC, n - jc);
    for (let pc = 0; pc < k; pc += kStep) {
      const kc = min(kStep, k - pc);
      const addToC = accumulate || pc > 0;
      packB(packedB, b, rsB, csB, pc, kc, jc, nc);
      for (let ic = rowStart; ic < rowEnd; ic += MR) {
        const mr = min(MR, rowEnd - ic);
        // Full row blocks of a row-contiguous A are read in place; the rest is packed.
        const direct = csA == 1 && mr == MR;
        const aBlock = at(a, ic * rsA + pc);
        if (!direct) packA(packedA, a, rsA, csA, ic, mr, pc, kc);
        for (let jr = 0; jr < nc; jr += NR) {
          const nr = min(NR, nc - jr);
          const cTile = at(c, ic * ldc + jc + jr);
          const pb = at(packedB, jr * kc);
          if (mr == MR && nr == NR) {
            if (direct) microKernelRows(kc, aBlock, rsA, pb, cTile, ldc, addToC);
            else microKernel(kc, packedA, pb, cTile, ldc, addToC);
          } else {
            if (direct) packA(packedA, a, rsA, csA, ic, mr, pc, kc);
            // Edge tile: compute into a full 4 x 8 scratch tile, copy back the part inside C.
            for (let r = 0; r < MR; r++) {
              for (let j = 0; j < NR; j++) {
                const inside = addToC && r < mr && j < nr;
                store<f32>(at(tile, r * NR + j), inside ? load<f32>(at(cTile, r * ldc + j)) : 0);
              }
            }
            microKernel(kc, packedA, pb, tile, NR, true);
            for (let r = 0; r < mr; r++) {
              for (let j = 0; j < nr; j++) store<f32>(at(cTile, r * ldc + j), load<f32>(at(tile, r * NR + j)));
            }
          }
        }
      }
    }
  }
}

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

/** out[i] = a[i] * b[i]. */
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

// Dropout's generator (see dropoutMask in src/kernels/types.ts and dropoutWord in js.ts).
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

/** out[i] = 0. (TypedArray.fill is about five times slower on a shared memory's buffer.) */
export function zero(out: usize, n: i32): void {
  memory.fill(out, 0, <usize>n << 2);
}

export function multiply(out: usize, a: usize, b: usize, n: i32): void {
  const vecEnd = n & ~3;
  for (let i = 0; i < vecEnd; i += 4) v128.store(at(out, i), f32x4.mul(v128.load(at(a, i)), v128.load(at(b, i))));
  for (let i = vecEnd; i < n; i++) store<f32>(at(out, i), load<f32>(at(a, i)) * load<f32>(at(b, i)));
}

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

/** One SGD step with (Nesterov) momentum and L2 weight decay, as the TypeScript reference. */
export function sgdStep(param: usize, grad: usize, velocity: usize, n: i32, lr: f32, momentum: f32, nesterov: bool, decay: f32): void {
  for (let i = 0; i < n; i++) {
    const p = load<f32>(at(param, i));
    let g = load<f32>(at(grad, i)) + decay * p;
    if (momentum != 0) {
      const v = momentum * load<f32>(at(velocity, i)) + g;
      store<f32>(at(velocity, i), v);
      g = nesterov ? g + momentum * v : v;
    }
    store<f32>(at(param, i), p - lr * g);
  }
}

/**
 * One Adam step with L2 weight decay. `stepSize` = lr / (1 - beta1^t) and `correction2`
 * = 1 - beta2^t are computed once by the caller in float64.
 */
export function adamStep(
  param: usize, grad: usize, m: usize, v: usize, n: i32,
  stepSize: f32, beta1: f32, beta2: f32, epsilon: f32, decay: f32, correction2: f32,
): void {
  const b1 = f32x4.splat(beta1), b2 = f32x4.splat(beta2);
  const ob1 = f32x4.splat(1 - beta1), ob2 = f32x4.splat(1 - beta2);
  const wd = f32x4.splat(decay), eps = f32x4.splat(epsilon);
  const step = f32x4.splat(stepSize), invC2 = f32x4.splat(1 / correction2);
  const vecEnd = n & ~3;
  for (let i = 0; i < vecEnd; i += 4) {
    const p = v128.load(at(param, i));
    const g = f32x4.add(v128.load(at(grad, i)), f32x4.mul(wd, p));
    const mi = f32x4.add(f32x4.mul(b1, v128.load(at(m, i))), f32x4.mul(ob1, g));
    const vi = f32x4.add(f32x4.mul(b2, v128.load(at(v, i))), f32x4.mul(ob2, f32x4.mul(g, g)));
    v128.store(at(m, i), mi);
    v128.store(at(v, i), vi);
    const denominator = f32x4.add(f32x4.sqrt(f32x4.mul(vi, invC2)), eps);
    v128.store(at(param, i), f32x4.sub(p, f32x4.div(f32x4.mul(step, mi), denominator)));
  }
  for (let i = vecEnd; i < n; i++) {
    const p = load<f32>(at(param, i));
    const g = load<f32>(at(grad, i)) + decay * p;
    const mi = beta1 * load<f32>(at(m, i)) + (1 - beta1) * g;
    const vi = beta2 * load<f32>(at(v, i)) + (1 - beta2) * g * g;
    store<f32>(at(m, i), mi);
    store<f32>(at(v, i), vi);
    store<f32>(at(param, i), p - (stepSize * mi) / (Mathf.sqrt(vi / correction2) + epsilon));
  }
}

// ---- Convolution (NHWC, stride 1, "same" padding) as im2col + gemm, one image at a time ----
// An image's column matrix has one row per output pixel (y, x) and one column per tap
// (dy, dx, c): H·W rows of K·K·C floats. The weight [K, K, C, O] is then a (K·K·C) x O matrix.

function im2col(col: usize, image: usize, height: i32, width: i32, channels: i32, kernel: i32): void {
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

// ---- Winograd F(2x2, 3x3): the 3x3 convolutions with 2.25x fewer multiplications ----
// Each 2x2 block of outputs (a tile) is Aᵀ [Σ_c (G g Gᵀ) ⊙ (Bᵀ d B)] A over the 4x4 input window
// d around it (Lavin & Gray 2016). With V[ξ][tile][c] = Bᵀ d B and U[ξ][c][o] = G g Gᵀ
// (ξ = 4i + j), the sum over channels is 16 matrix products M[ξ] = V[ξ] · U[ξ]. The backend uses
// it for 3x3 convolutions whose channel counts are multiples of 4 and at least 8 (the same
// algorithm as the native backend's; the channel loops here are f32x4 only).

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

// ---- 2x2 max pooling, stride 2, NHWC ----

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
