// Matrix products, C[m,n] (+)= op(A) · op(B), row-major: sgemm.c's, split over the team
// by rows or columns of C, or by depth k for thin, deep products.
#include <string.h>

#include "kernels.h"
#include "sgemm.h"
#include "team.h"

typedef struct {
  float *c;
  const float *a, *b;
  int m, k, n, trans_a, trans_b, accumulate;
} Gemm;

// Part `part` of C: rows [begin, end) when C has at least as many rows as columns (the same
// rows of op(A), which start `begin` rows down A, or for Aᵀ `begin` columns across A, whose
// leading dimension stays m); otherwise columns [begin, end) (the same columns of op(B)), so
// that each thread packs only its share of B (the MLP's 64-row batches against 784x128 weights).
static void gemm_part(void *context, int part, int parts) {
  const Gemm *g = context;
  int by_rows = g->m >= g->n, begin, end;
  split_range(by_rows ? g->m : g->n, part, parts, &begin, &end);
  if (end <= begin) return;
  int m = by_rows ? end - begin : g->m, n = by_rows ? g->n : end - begin;
  const float *a = !by_rows ? g->a : g->trans_a ? g->a + begin : g->a + (size_t)begin * g->k;
  const float *b = by_rows ? g->b : g->trans_b ? g->b + (size_t)begin * g->k : g->b + begin;
  float *c = by_rows ? g->c + (size_t)begin * g->n : g->c + begin;
  sgemm(g->trans_a, g->trans_b, m, n, g->k, a, g->trans_a ? g->m : g->k, b, g->trans_b ? g->k : g->n, g->accumulate, c, g->n);
}

// A product split by k: part p computes op(A)[:, k range] · op(B)[k range, :], part 0 into C
// itself, the others into partial sums, which are then added to C in part order (so a run
// repeats exactly). Chosen for thin, deep products (the MLP's 64 x 784 x 128 forward pass):
// each thread then reads only its rows of the weights, the rows that its part of the weight
// gradient wrote and its part of the optimiser step updated, so they stay in that core's
// cache, where a split by columns of C made each core fetch half its weights from the other's.
typedef struct {
  const Gemm *g;
  float *partials;
} DeepGemm;

static void gemm_deep_part(void *context, int part, int parts) {
  const DeepGemm *d = context;
  const Gemm *g = d->g;
  int begin, end;
  split_range(g->k, part, parts, &begin, &end);
  float *c = part == 0 ? g->c : d->partials + (size_t)(part - 1) * g->m * g->n;
  int accumulate = part == 0 && g->accumulate;
  const float *a = g->trans_a ? g->a + (size_t)begin * g->m : g->a + begin;
  const float *b = g->trans_b ? g->b + begin : g->b + (size_t)begin * g->n;
  sgemm(g->trans_a, g->trans_b, g->m, g->n, end - begin, a, g->trans_a ? g->m : g->k, b, g->trans_b ? g->k : g->n, accumulate, c, g->n);
}

// Runs the product split by k; returns 0 (having done nothing) when the partial sums cannot be had.
static int gemm_deep(const Gemm *g, int parts) {
  size_t size = (size_t)g->m * g->n;
  if (!reserve_partials(parts, size)) return 0;
  DeepGemm d = {g, partials};
  parallel(gemm_deep_part, &d, parts);
  add_partial_sums(g->c, d.partials, parts - 1, size);
  return 1;
}

// C[m,n] (+)= op(A) · op(B), op(X) = Xᵀ where trans_x.
static void gemm(float *c, const float *a, const float *b, int m, int k, int n, int trans_a, int trans_b, int accumulate) {
  if (m == 0 || n == 0) return;
  if (k == 0) {
    if (!accumulate) memset(c, 0, sizeof(float) * (size_t)m * n);
    return;
  }
  Gemm g = {c, a, b, m, k, n, trans_a, trans_b, accumulate};
  int parts = parts_for((double)m * n * k, 1 << 17);
  // Deep and thin (k > n > m): split by k, with at least 64 of k per part.
  if (parts > 1 && m < n && n < k && k >= 64 * parts && gemm_deep(&g, parts)) return;
  parallel(gemm_part, &g, parts);
}

void fm_matmul(float *c, const float *a, const float *b, int32_t m, int32_t k, int32_t n, int32_t accumulate) {
  gemm(c, a, b, m, k, n, 0, 0, accumulate);
}

void fm_matmul_trans_a(float *c, const float *a, const float *b, int32_t m, int32_t k, int32_t n, int32_t accumulate) {
  gemm(c, a, b, m, k, n, 1, 0, accumulate);
}

void fm_matmul_trans_b(float *c, const float *a, const float *b, int32_t m, int32_t k, int32_t n, int32_t accumulate) {
  gemm(c, a, b, m, k, n, 0, 1, accumulate);
}
