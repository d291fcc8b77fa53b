// Batch normalisation over the last dimension of [rows, channels] (every position of a batch
// of NHWC images is a row): the batch statistics and the backward pass's sums per channel in
// float64, rows in order, as the reference (src/kernels/js.ts) sums them; the per-element
// passes in float32, split over the team by rows.
#include "kernels.h"
#include "team.h"

void fm_batch_norm_statistics(float *mean, float *variance, const float *inp, int32_t rows, int32_t channels) {
  double sum[channels], squares[channels];
  for (int c = 0; c < channels; c++) sum[c] = squares[c] = 0;
  for (int r = 0; r < rows; r++) {
    const float *row = inp + (size_t)r * channels;
    for (int c = 0; c < channels; c++) sum[c] += row[c];
  }
  for (int c = 0; c < channels; c++) sum[c] /= rows;
  // Two passes: the squared deviations from the mean, not E[x²] - E[x]², which cancels badly.
  for (int r = 0; r < rows; r++) {
    const float *row = inp + (size_t)r * channels;
    for (int c = 0; c < channels; c++) {
      double d = row[c] - sum[c];
      squares[c] += d * d;
    }
  }
  for (int c = 0; c < channels; c++) {
    mean[c] = (float)sum[c];
    variance[c] = (float)(squares[c] / rows);
  }
}

typedef struct {
  float *out, *normalized;
  const float *inp, *mean, *inv_std, *gamma, *beta;
  int channels;
} ForwardArgs;

static void forward_rows(void *context, int begin, int end) {
  const ForwardArgs *a = context;
  const float *restrict mean = a->mean, *restrict inv_std = a->inv_std, *restrict gamma = a->gamma, *restrict beta = a->beta;
  for (int r = begin; r < end; r++) {
    size_t base = (size_t)r * a->channels;
    float *restrict out = a->out + base, *restrict normalized = a->normalized + base;
    const float *restrict inp = a->inp + base;
    for (int c = 0; c < a->channels; c++) {
      float x = (inp[c] - mean[c]) * inv_std[c];
      normalized[c] = x;
      out[c] = gamma[c] * x + beta[c];
    }
  }
}

void fm_batch_norm_forward(float *out, float *normalized, const float *inp, const float *mean, const float *inv_std, const float *gamma, const float *beta,
                           int32_t rows, int32_t channels) {
  ForwardArgs a = {out, normalized, inp, mean, inv_std, gamma, beta, channels};
  parallel_range(forward_rows, &a, rows, 3.0 * channels);
}

void fm_batch_norm_backward_sums(float *sum_dout, float *sum_dout_normalized, const float *dout, const float *normalized, int32_t rows, int32_t channels) {
  double dy[channels], dyx[channels];
  for (int c = 0; c < channels; c++) dy[c] = dyx[c] = 0;
  for (int r = 0; r < rows; r++) {
    const float *g = dout + (size_t)r * channels, *x = normalized + (size_t)r * channels;
    for (int c = 0; c < channels; c++) {
      dy[c] += g[c];
      dyx[c] += (double)g[c] * x[c];
    }
  }
  for (int c = 0; c < channels; c++) {
    sum_dout[c] = (float)dy[c];
    sum_dout_normalized[c] = (float)dyx[c];
  }
}

typedef struct {
  float *dinp;
  const float *dout, *normalized, *dout_scale, *offset, *normalized_scale;
  int channels;
} BackwardArgs;

static void backward_rows(void *context, int begin, int end) {
  const BackwardArgs *a = context;
  const float *restrict dout_scale = a->dout_scale, *restrict offset = a->offset, *restrict normalized_scale = a->normalized_scale;
  for (int r = begin; r < end; r++) {
    size_t base = (size_t)r * a->channels;
    float *restrict dinp = a->dinp + base;
    const float *restrict dout = a->dout + base, *restrict x = a->normalized + base;
    for (int c = 0; c < a->channels; c++) dinp[c] = dout_scale[c] * dout[c] - offset[c] - x[c] * normalized_scale[c];
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

static void affine_rows(void *context, int begin, int end) {
  const AffineArgs *a = context;
  const float *restrict scale = a->scale, *restrict shift = a->shift;
  for (int r = begin; r < end; r++) {
    size_t base = (size_t)r * a->channels;
    float *restrict out = a->out + base;
    const float *restrict inp = a->inp + base;
    for (int c = 0; c < a->channels; c++) out[c] = inp[c] * scale[c] + shift[c];
  }
}

void fm_channel_affine(float *out, const float *inp, const float *scale, const float *shift, int32_t rows, int32_t channels) {
  AffineArgs a = {out, inp, scale, shift, channels};
  parallel_range(affine_rows, &a, rows, 2.0 * channels);
}
