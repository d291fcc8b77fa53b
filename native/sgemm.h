// The addon's own single-threaded matrix product (sgemm.c), which the kernels call from inside
// their parts of a team task.
#ifndef FMNIST_SGEMM_H
#define FMNIST_SGEMM_H

#pragma GCC visibility push(hidden)

// C[m,n] = op(A)[m,k] · op(B)[k,n], or C += that where `accumulate`; row-major with leading
// dimensions lda, ldb, ldc; op(X) = Xᵀ where trans_x. Each element of C is one chain of fused
// multiply-adds in the order of k, from zero (or from C's value), at every vector width.
void sgemm(int trans_a, int trans_b, int m, int n, int k, const float *a, int lda, const float *b, int ldb, int accumulate, float *c,
           int ldc);

// The vector widths (floats) that this CPU can run the product at, widest first: 16 (AVX-512),
// 8 (AVX2 with FMA), 1 (scalar fmaf, everywhere). Returns how many were written to `widths`.
int sgemm_widths(int widths[3]);

// The width in use; sgemm_set_width picks one of sgemm_widths (tests compare them), or the
// widest for 0, returning 0 for a width this CPU cannot run. The default is the widest.
int sgemm_width(void);
int sgemm_set_width(int width);

// Frees the calling thread's packing buffers (the next product on it allocates them again).
void sgemm_release_buffers(void);

#pragma GCC visibility pop

#endif
