// Matrix products of our own, C (+)= op(A) · op(B), in place of OpenBLAS's sgemm.
//
// Why: a product's rounding depends on the order of its sums, and OpenBLAS sums in a different
// order with each kernel set it picks by CPU (its AVX2 and AVX-512 kernels split k differently),
// so the same seed trained other weights on another machine unless the AVX2 kernels were forced
// everywhere, which left half of an AVX-512 core unused. Here every element of C is one chain
// of fused multiply-adds in the order of k: c = fma(a[i][0], b[0][j], c), then k = 1, 2, ...,
// from zero (or from C's value when accumulating). Vectors run across j, one element per lane,
// so the width of the vectors (16 floats with AVX-512, 8 with AVX2, 1 in the scalar kernel)
// changes how many elements advance at once, never the order in which one is summed: every
// width gives the same bits (test/backends.test.ts compares them), and the widest one the CPU
// has is used.
//
// The layout is that of a register-blocked product: a kernel keeps an MR x NR block of C in
// registers over a block of KC steps of k, broadcasting one element of A's MR rows at a time
// against a row of NR elements of B. Whole panels of A (MR rows) and of B (NR columns) are read
// where they lie; the partial panels at the edges, and B when transposed, are first packed
// (copied k-major, zero-padded). Stopping after KC steps stores C and resumes from it, which
// leaves each chain unchanged.
#include "sgemm.h"

#include <math.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define HAVE_X86_KERNELS 1
#endif

#define KC 256   // steps of k per block (an A panel of 12 x 256 floats stays in L1)
#define MC 192   // rows of A per block (192 x 256 floats: 192 KB, stays in L2); a multiple of every MR
#define NC 1024  // columns of B per block (a multiple of every NR)
// Each width's block of C: MR rows by NR columns (two vectors per row).
#define SCALAR_MR 4
#define SCALAR_NR 4
#define AVX2_MR 6  // 12 accumulators of the 16 AVX2 registers
#define AVX2_NR 16
#define AVX512_MR 12  // 24 accumulators of the 32 AVX-512 registers
#define AVX512_NR 32
// The rows below the last whole block, packed in smaller blocks, so that 2 leftover rows (98
// tiles) do not cost a 12-row block: the fewest rows whose accumulators still keep both fused
// multiply-add pipes busy (8 with AVX-512, at 4 cycles' latency; 6 with AVX2).
#define AVX2_TAIL_MR 3
#define AVX512_TAIL_MR 4
#define MAX_MR 12
#define MAX_NR 32

// The kernels compute C[MR, NR] (ldc apart) = (resume ? C : 0) + A · B over kc steps of k, A's
// element (r, p) at a[r * rs + p * cs] and B's row p at b[p * bs] (NR floats). Three forms of A
// each: packed (rs = 1, cs = MR), rows of a row-major op(A) (cs = 1) and its columns (rs = 1),
// so that whole panels are read where they lie and only the edges are packed.
typedef void (*Kernel)(int kc, const float *restrict a, ptrdiff_t stride, const float *restrict b, ptrdiff_t bs, float *restrict c, int ldc,
                       int resume);

typedef struct {
  int width, mr, nr, tail_mr;
  Kernel packed, rows, cols;  // A packed; A's rows `stride` apart; A's columns `stride` apart
  Kernel tail;                // A packed in blocks of tail_mr rows
} Variant;

#define INLINE __attribute__((always_inline)) static inline

// ---- The kernels: the same chain of fmas, three widths ----

INLINE void scalar_block(int mr, int kc, const float *restrict a, ptrdiff_t rs, ptrdiff_t cs, const float *restrict b, ptrdiff_t bs,
                         float *restrict c, int ldc, int resume) {
  float acc[SCALAR_MR][SCALAR_NR];
  for (int r = 0; r < mr; r++)
    for (int j = 0; j < SCALAR_NR; j++) acc[r][j] = resume ? c[r * ldc + j] : 0.0f;
  for (int p = 0; p < kc; p++)
    for (int r = 0; r < mr; r++)
      for (int j = 0; j < SCALAR_NR; j++) acc[r][j] = fmaf(a[p * cs + r * rs], b[p * bs + j], acc[r][j]);
  for (int r = 0; r < mr; r++)
    for (int j = 0; j < SCALAR_NR; j++) c[r * ldc + j] = acc[r][j];
}

// A width's four kernels over its block function: A packed in blocks of MR rows, A packed in
// blocks of TAIL_MR rows, A's rows `stride` apart, A's columns `stride` apart.
#define KERNELS(isa, TARGET, MR, TAIL_MR)                                                                                            \
  TARGET static void isa##_packed(int kc, const float *restrict a, ptrdiff_t stride, const float *restrict b, ptrdiff_t bs,         \
                                  float *restrict c, int ldc, int resume) {                                                       \
    (void)stride;                                                                                                                 \
    isa##_block(MR, kc, a, 1, MR, b, bs, c, ldc, resume);                                                                         \
  }                                                                                                                               \
  TARGET static void isa##_tail(int kc, const float *restrict a, ptrdiff_t stride, const float *restrict b, ptrdiff_t bs,           \
                                float *restrict c, int ldc, int resume) {                                                         \
    (void)stride;                                                                                                                 \
    isa##_block(TAIL_MR, kc, a, 1, TAIL_MR, b, bs, c, ldc, resume);                                                               \
  }                                                                                                                               \
  TARGET static void isa##_rows(int kc, const float *restrict a, ptrdiff_t stride, const float *restrict b, ptrdiff_t bs,           \
                                float *restrict c, int ldc, int resume) {                                                         \
    isa##_block(MR, kc, a, stride, 1, b, bs, c, ldc, resume);                                                                     \
  }                                                                                                                               \
  TARGET static void isa##_cols(int kc, const float *restrict a, ptrdiff_t stride, const float *restrict b, ptrdiff_t bs,           \
                                float *restrict c, int ldc, int resume) {                                                         \
    isa##_block(MR, kc, a, 1, stride, b, bs, c, ldc, resume);                                                                     \
  }

#define NO_TARGET
KERNELS(scalar, NO_TARGET, SCALAR_MR, SCALAR_MR)

#ifdef HAVE_X86_KERNELS
#define AVX2 __attribute__((target("avx2,fma")))
AVX2 INLINE void avx2_block(int mr, int kc, const float *restrict a, ptrdiff_t rs, ptrdiff_t cs, const float *restrict b, ptrdiff_t bs,
                            float *restrict c, int ldc, int resume) {
  __m256 acc[AVX2_MR][2];
#pragma GCC unroll 6
  for (int r = 0; r < mr; r++) {
    acc[r][0] = resume ? _mm256_loadu_ps(c + r * ldc) : _mm256_setzero_ps();
    acc[r][1] = resume ? _mm256_loadu_ps(c + r * ldc + 8) : _mm256_setzero_ps();
  }
  for (int p = 0; p < kc; p++) {
    __m256 b0 = _mm256_loadu_ps(b + p * bs), b1 = _mm256_loadu_ps(b + p * bs + 8);
#pragma GCC unroll 6
    for (int r = 0; r < mr; r++) {
      __m256 x = _mm256_broadcast_ss(a + p * cs + r * rs);
      acc[r][0] = _mm256_fmadd_ps(x, b0, acc[r][0]);
      acc[r][1] = _mm256_fmadd_ps(x, b1, acc[r][1]);
    }
  }
#pragma GCC unroll 6
  for (int r = 0; r < mr; r++) {
    _mm256_storeu_ps(c + r * ldc, acc[r][0]);
    _mm256_storeu_ps(c + r * ldc + 8, acc[r][1]);
  }
}

KERNELS(avx2, AVX2, AVX2_MR, AVX2_TAIL_MR)

#define AVX512 __attribute__((target("avx512f")))
AVX512 INLINE void avx512_block(int mr, int kc, const float *restrict a, ptrdiff_t rs, ptrdiff_t cs, const float *restrict b, ptrdiff_t bs,
                                float *restrict c, int ldc, int resume) {
  __m512 acc[AVX512_MR][2];
#pragma GCC unroll 12
  for (int r = 0; r < mr; r++) {
    acc[r][0] = resume ? _mm512_loadu_ps(c + r * ldc) : _mm512_setzero_ps();
    acc[r][1] = resume ? _mm512_loadu_ps(c + r * ldc + 16) : _mm512_setzero_ps();
  }
  for (int p = 0; p < kc; p++) {
    __m512 b0 = _mm512_loadu_ps(b + p * bs), b1 = _mm512_loadu_ps(b + p * bs + 16);
#pragma GCC unroll 12
    for (int r = 0; r < mr; r++) {
      __m512 x = _mm512_set1_ps(a[p * cs + r * rs]);
      acc[r][0] = _mm512_fmadd_ps(x, b0, acc[r][0]);
      acc[r][1] = _mm512_fmadd_ps(x, b1, acc[r][1]);
    }
  }
#pragma GCC unroll 12
  for (int r = 0; r < mr; r++) {
    _mm512_storeu_ps(c + r * ldc, acc[r][0]);
    _mm512_storeu_ps(c + r * ldc + 16, acc[r][1]);
  }
}

KERNELS(avx512, AVX512, AVX512_MR, AVX512_TAIL_MR)
#endif

static const Variant SCALAR_VARIANT = {1, SCALAR_MR, SCALAR_NR, SCALAR_MR, scalar_packed, scalar_rows, scalar_cols, scalar_tail};
#ifdef HAVE_X86_KERNELS
static const Variant AVX2_VARIANT = {8, AVX2_MR, AVX2_NR, AVX2_TAIL_MR, avx2_packed, avx2_rows, avx2_cols, avx2_tail};
static const Variant AVX512_VARIANT = {16, AVX512_MR, AVX512_NR, AVX512_TAIL_MR, avx512_packed, avx512_rows, avx512_cols, avx512_tail};
#endif

// The variant in use: set from the JavaScript thread between tasks, read by the team's threads.
static const Variant *_Atomic chosen;

int sgemm_widths(int widths[3]) {
  int count = 0;
#ifdef HAVE_X86_KERNELS
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) widths[count++] = 16;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) widths[count++] = 8;
#endif
  widths[count++] = 1;
  return count;
}

int sgemm_set_width(int width) {
  int widths[3], count = sgemm_widths(widths), supported = 0;
  if (width == 0) width = widths[0];
  for (int i = 0; i < count; i++) supported |= widths[i] == width;
  if (!supported) return 0;
#ifdef HAVE_X86_KERNELS
  atomic_store(&chosen, width == 16 ? &AVX512_VARIANT : width == 8 ? &AVX2_VARIANT : &SCALAR_VARIANT);
#else
  atomic_store(&chosen, &SCALAR_VARIANT);
#endif
  return 1;
}

// The addon sets the width when it loads its kernels, before any product; the widest otherwise.
static const Variant *variant(void) {
  const Variant *v = atomic_load(&chosen);
  if (v) return v;
  sgemm_set_width(0);
  return atomic_load(&chosen);
}

int sgemm_width(void) { return variant()->width; }

// ---- Packing ----

// op(A)[i][p] and op(B)[p][j].
static inline float at(const float *x, int ld, int trans, int row, int col) {
  return trans ? x[(size_t)col * ld + row] : x[(size_t)row * ld + col];
}

// Rows [i0, i0 + rows) x steps [p0, p0 + depth) of op(A) into panels of mr rows, [depth][mr]
// each, the rows past `rows` zero (their products land in rows of C that are never stored).
static void pack_a(float *restrict dst, const float *a, int lda, int trans, int i0, int rows, int p0, int depth, int mr) {
  for (int i = 0; i < rows; i += mr, dst += (size_t)depth * mr) {
    int live = rows - i < mr ? rows - i : mr;
    for (int r = 0; r < mr; r++) {
      float *out = dst + r;
      if (r >= live) {
        for (int p = 0; p < depth; p++) out[(size_t)p * mr] = 0.0f;
      } else if (trans) {
        const float *in = a + (size_t)p0 * lda + i0 + i + r;
        for (int p = 0; p < depth; p++) out[(size_t)p * mr] = in[(size_t)p * lda];
      } else {
        const float *in = a + (size_t)(i0 + i + r) * lda + p0;
        for (int p = 0; p < depth; p++) out[(size_t)p * mr] = in[p];
      }
    }
  }
}

// Steps [p0, p0 + depth) x columns [j0, j0 + cols) of op(B) into panels of nr columns,
// [depth][nr] each, the columns past `cols` zero.
static void pack_b(float *restrict dst, const float *b, int ldb, int trans, int p0, int depth, int j0, int cols, int nr) {
  for (int j = 0; j < cols; j += nr, dst += (size_t)depth * nr) {
    int live = cols - j < nr ? cols - j : nr;
    for (int p = 0; p < depth; p++) {
      float *out = dst + (size_t)p * nr;
      if (!trans) {
        memcpy(out, b + (size_t)(p0 + p) * ldb + j0 + j, sizeof(float) * live);
      } else {
        for (int q = 0; q < live; q++) out[q] = at(b, ldb, 1, p0 + p, j0 + j + q);
      }
      for (int q = live; q < nr; q++) out[q] = 0.0f;
    }
  }
}

// Each thread's packing buffers (one A panel at the bottom edge; B's block when B is transposed,
// else its right edge panel), allocated on the thread's first product and freed by
// sgemm_release_buffers: by the team's threads as they stop (they are replaced whenever the
// thread count is set again), and by the addon's cleanup hook on a JavaScript thread whose
// environment ends (a worker thread). Not by a thread-exit destructor: Node unloads the addon
// when a worker's environment ends, before the thread exits, and a destructor in the unloaded
// library would then be called at an address that no longer holds it.
typedef struct {
  float *a, *b;
} Packing;

static _Thread_local Packing packing;

void sgemm_release_buffers(void) {
  free(packing.a);
  free(packing.b);
  packing.a = packing.b = NULL;
}

// This thread's buffers, or NULL where they cannot be had.
static Packing *packing_buffers(void) {
  if (packing.a) return &packing;
  void *a = NULL, *b = NULL;
  if (posix_memalign(&a, 64, sizeof(float) * MAX_MR * KC) != 0 || posix_memalign(&b, 64, sizeof(float) * KC * NC) != 0) {
    free(a);
    return NULL;
  }
  packing.a = a;
  packing.b = b;
  return &packing;
}

// The same chains without packing, one element at a time: where the buffers cannot be had.
static void sgemm_unpacked(int trans_a, int trans_b, int m, int n, int k, const float *a, int lda, const float *b, int ldb, int accumulate,
                           float *c, int ldc) {
  for (int i = 0; i < m; i++)
    for (int j = 0; j < n; j++) {
      float sum = accumulate ? c[(size_t)i * ldc + j] : 0.0f;
      for (int p = 0; p < k; p++) sum = fmaf(at(a, lda, trans_a, i, p), at(b, ldb, trans_b, p, j), sum);
      c[(size_t)i * ldc + j] = sum;
    }
}

void sgemm(int trans_a, int trans_b, int m, int n, int k, const float *a, int lda, const float *b, int ldb, int accumulate, float *c,
           int ldc) {
  if (m <= 0 || n <= 0) return;
  if (k <= 0) {
    if (!accumulate)
      for (int i = 0; i < m; i++) memset(c + (size_t)i * ldc, 0, sizeof(float) * n);
    return;
  }
  Packing *buffers = packing_buffers();
  if (!buffers) {
    sgemm_unpacked(trans_a, trans_b, m, n, k, a, lda, b, ldb, accumulate, c, ldc);
    return;
  }
  const Variant *v = variant();
  int mr = v->mr, nr = v->nr;
  Kernel in_place = trans_a ? v->cols : v->rows;  // A's whole panels, read where they lie
  float edge[MAX_MR * MAX_NR] = {0};              // an MR x NR block of C at the bottom or right edge
  for (int jc = 0; jc < n; jc += NC) {
    int nc = n - jc < NC ? n - jc : NC;
    int right = nc - nc % nr;  // the block's columns [right, nc) form a partial panel
    for (int pc = 0; pc < k; pc += KC) {
      int kc = k - pc < KC ? k - pc : KC;
      int resume = accumulate || pc > 0;
      // Bᵀ is packed whole (its rows would be read across); B's partial panel is packed alone.
      if (trans_b) pack_b(buffers->b, b, ldb, 1, pc, kc, jc, nc, nr);
      else if (right < nc) pack_b(buffers->b, b, ldb, 0, pc, kc, jc + right, nc - right, nr);
      for (int ic = 0; ic < m; ic += MC) {
        int mc = m - ic < MC ? m - ic : MC;
        int bottom = mc - mc % mr;  // the block's rows [bottom, mc), packed in panels of tail_mr rows
        if (bottom < mc) pack_a(buffers->a, a, lda, trans_a, ic + bottom, mc - bottom, pc, kc, v->tail_mr);
        for (int jr = 0; jr < nc; jr += nr) {
          int cols = nc - jr < nr ? nc - jr : nr;
          const float *bp;
          ptrdiff_t bs;
          if (trans_b) {
            bp = buffers->b + (size_t)jr * kc, bs = nr;
          } else if (jr < right) {
            bp = b + (size_t)pc * ldb + jc + jr, bs = ldb;
          } else {
            bp = buffers->b, bs = nr;
          }
          for (int ir = 0; ir < mc;) {
            int panel = ir < bottom ? mr : v->tail_mr;
            int rows = mc - ir < panel ? mc - ir : panel, i = ic + ir;
            Kernel kernel = in_place;
            const float *ap;
            if (ir >= bottom) {
              kernel = v->tail, ap = buffers->a + (size_t)(ir - bottom) * kc;
            } else {
              ap = trans_a ? a + (size_t)pc * lda + i : a + (size_t)i * lda + pc;
            }
            float *block = c + (size_t)i * ldc + jc + jr;
            ir += panel;
            if (rows == panel && cols == nr) {
              kernel(kc, ap, lda, bp, bs, block, ldc, resume);
              continue;
            }
            for (int r = 0; r < rows && resume; r++) memcpy(edge + r * nr, block + (size_t)r * ldc, sizeof(float) * cols);
            kernel(kc, ap, lda, bp, bs, edge, nr, resume);
            for (int r = 0; r < rows; r++) memcpy(block + (size_t)r * ldc, edge + r * nr, sizeof(float) * cols);
          }
        }
      }
    }
  }
}
