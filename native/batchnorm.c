// Batch normalisation over the last dimension of [rows, channels] (every position of a batch
// of NHWC images is a row): the batch statistics and the backward pass's sums per channel in
// float64 (each thread sums its rows, the threads' sums added in a fixed order), the
// per-element passes in float32; all split over the team by rows.
#include <stdbool.h>
#include <stdlib.h>

#include "kernels.h"
#include "team.h"

// Per-channel float64 sums over row ranges, one range per part of the team, each part into its
// own sums; the parts' sums are then added in part order, so a run repeats exactly for a given
// thread count. `first` and `second` sum x and x² - or, with `mean`, (x - mean)² - of `a`; or,
// with `b`, b and a·b.
typedef struct {
  const float *a, *b;
  const double *mean;
  double *sums;  // [parts][2][channels]
  int rows, channels;
} SumTask;

static void sum_part(void *context, int part, int parts) {
  const SumTask *t = context;
  int begin, end, channels = t->channels;
  split_range(t->rows, part, parts, &begin, &end);
  double *first = t->sums + (size_t)part * 2 * channels, *second = first + channels;
  for (int c = 0; c < channels; c++) first[c] = second[c] = 0;
  for (int r = begin; r < end; r++) {
    const float *a = t->a + (size_t)r * channels;
    if (t->b) {
      const float *b = t->b + (size_t)r * channels;
      for (int c = 0; c < channels; c++) {
        first[c] += b[c];
        second[c] += (double)b[c] * a[c];
      }
    } else if (t->mean) {
      for (int c = 0; c < channels; c++) {
        double d = a[c] - t->mean[c];
        second[c] += d * d;
      }
    } else {
      for (int c = 0; c < channels; c++) first[c] += a[c];
    }
  }
}

// Runs the sums over the team (parts worth at least 64K floats each) into `total` [2][channels].
static void sum_rows_by_parts(SumTask *t, double *total) {
  int parts = parts_for((double)t->rows * t->channels, 1 << 16);
  size_t size = (size_t)2 * t->channels;
  // One part sums straight into `total`; more need a buffer (without one, one part it is).
  double *sums = parts > 1 ? malloc(sizeof(double) * size * parts) : NULL;
  if (!sums) parts = 1;
  t->sums = sums ? sums : total;
  parallel(sum_part, t, parts);
  if (!sums) return;
  for (size_t i = 0; i < size; i++) total[i] = 0;
  for (int p = 0; p < parts; p++)
    for (size_t i = 0; i < size; i++) total[i] += sums[(size_t)p * size + i];
  free(sums);
}

void fm_batch_norm_statistics(float *mean, float *variance, const float *inp, int32_t rows, int32_t channels) {
  double total[2 * channels], means[channels];
  SumTask t = {.a = inp, .rows = rows, .channels = channels};
  sum_rows_by_parts(&t, total);
  for (int c = 0; c < channels; c++) means[c] = total[c] / rows;
  // Two passes: the squared deviations from the mean, not E[x²] - E[x]², which cancels badly.
  t.mean = means;
  sum_rows_by_parts(&t, total);
  for (int c = 0; c < channels; c++) {
    mean[c] = (float)means[c];
    variance[c] = (float)(total[channels + c] / rows);
  }
}

typedef struct {
  float *out, *normalized;
  const float *inp, *mean, *inv_std, *gamma, *beta;
  int channels;
  bool relu;  // batchNormReluForward: out = max(out, 0)
} ForwardArgs;

// The rows' loops take their arrays as restrict parameters: GCC vectorises them so, and not as
// restrict locals copied from the arguments' struct (it gave up on the aliasing checks, and the
// loop ran scalar). With `relu`, out = max(out, 0) (GCC keeps a loop for each case).
static void normalize_row(bool relu, int channels, float *restrict out, float *restrict normalized, const float *restrict inp,
                          const float *restrict mean, const float *restrict inv_std, const float *restrict gamma, const float *restrict beta) {
  for (int c = 0; c < channels; c++) {
    float x = (inp[c] - mean[c]) * inv_std[c];
    normalized[c] = x;
    float y = gamma[c] * x + beta[c];
    out[c] = relu && !(y > 0) ? 0 : y;
  }
}

static void forward_rows(void *context, int begin, int end) {
  const ForwardArgs *a = context;
  for (int r = begin; r < end; r++) {
    size_t base = (size_t)r * a->channels;
    normalize_row(a->relu, a->channels, a->out + base, a->normalized + base, a->inp + base, a->mean, a->inv_std, a->gamma, a->beta);
  }
}

void fm_batch_norm_forward(float *out, float *normalized, const float *inp, const float *mean, const float *inv_std, const float *gamma, const float *beta,
                           int32_t rows, int32_t channels) {
  ForwardArgs a = {out, normalized, inp, mean, inv_std, gamma, beta, channels, false};
  parallel_range(forward_rows, &a, rows, 3.0 * channels);
}

void fm_batch_norm_relu_forward(float *out, float *normalized, const float *inp, const float *mean, const float *inv_std, const float *gamma, const float *beta,
                                int32_t rows, int32_t channels) {
  ForwardArgs a = {out, normalized, inp, mean, inv_std, gamma, beta, channels, true};
  parallel_range(forward_rows, &a, rows, 3.0 * channels);
}

void fm_batch_norm_backward_sums(float *sum_dout, float *sum_dout_normalized, const float *dout, const float *normalized, int32_t rows, int32_t channels) {
  double total[2 * channels];
  SumTask t = {.a = normalized, .b = dout, .rows = rows, .channels = channels};
  sum_rows_by_parts(&t, total);
  for (int c = 0; c < channels; c++) {
    sum_dout[c] = (float)total[c];
    sum_dout_normalized[c] = (float)total[channels + c];
  }
}

typedef struct {
  float *dinp;
  const float *dout, *normalized, *dout_scale, *offset, *normalized_scale;
  int channels;
} BackwardArgs;

static void backward_row(int channels, float *restrict dinp, const float *restrict dout, const float *restrict normalized, const float *restrict dout_scale,
                         const float *restrict offset, const float *restrict normalized_scale) {
  for (int c = 0; c < channels; c++) dinp[c] = dout_scale[c] * dout[c] - offset[c] - normalized[c] * normalized_scale[c];
}

static void backward_rows(void *context, int begin, int end) {
  const BackwardArgs *a = context;
  for (int r = begin; r < end; r++) {
    size_t base = (size_t)r * a->channels;
    backward_row(a->channels, a->dinp + base, a->dout + base, a->normalized + base, a->dout_scale, a->offset, a->normalized_scale);
  }
}

void fm_batch_norm_backward(float *dinp, const float *dout, const float *normalized, const float *dout_scale, const float *offset, const float *normalized_scale,
                            int32_t rows, int32_t channels) {
  BackwardArgs a = {dinp, dout, normalized, dout_scale, offset, normalized_scale, channels};
  parallel_range(backward_rows, &a, rows, 3.0 * channels);
}

typedef struct {
  float *out;
  const float *inp, *scale, *shift;
  int channels;
} AffineArgs;

static void affine_row(int channels, float *restrict out, const float *restrict inp, const float *restrict scale, const float *restrict shift) {
  for (int c = 0; c < channels; c++) out[c] = inp[c] * scale[c] + shift[c];
}

static void affine_rows(void *context, int begin, int end) {
  const AffineArgs *a = context;
  for (int r = begin; r < end; r++) {
    size_t base = (size_t)r * a->channels;
    affine_row(a->channels, a->out + base, a->inp + base, a->scale, a->shift);
  }
}

void fm_channel_affine(float *out, const float *inp, const float *scale, const float *shift, int32_t rows, int32_t channels) {
  AffineArgs a = {out, inp, scale, shift, channels};
  parallel_range(affine_rows, &a, rows, 2.0 * channels);
}
