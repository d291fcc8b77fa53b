// The packed SIMD matrix product. Matrices are row-major; a matrix argument is given as
// (pointer, row stride, column stride) so one routine serves plain and transposed operands:
// element (i, j) lives at ptr + 4 * (i * rowStride + j * colStride).

import { at } from './addresses';

// Register tile of the matrix product: MR rows x NR columns of C, held in 8 f32x4 registers
// (V8 has 16 xmm registers; larger tiles spill). KC x NC is the block of B packed at a time.
const MR: i32 = 4;
const NR: i32 = 8;
const KC: i32 = 256;
const NC: i32 = 512;

/** Floats of scratch memory one thread needs for gemm: packed B, packed A and an edge tile. */
export function gemmScratchFloats(): i32 {
  return KC * NC + KC * MR + MR * NR;
}

@inline function madd(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_madd(a, b, c);
  return f32x4.add(f32x4.mul(a, b), c);
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
