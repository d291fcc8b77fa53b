// Elementwise kernels and the bias's: addBias and its gradient sumRows, ReLU forward and
// backward, zero, multiply, and the moving average of the weights (emaUpdate, which flushes
// subnormal results: subnormal.h).
#include <string.h>

#include "kernels.h"
#include "subnormal.h"
#include "team.h"

typedef struct {
  float *out;
  const float *bias;
  int cols;
} BiasArgs;

// The arguments copied into restrict locals, so that GCC vectorizes the loop (as in Adam's).
static void add_bias_rows(void *context, int begin, int end) {
  const BiasArgs *a = context;
  const float *restrict bias = a->bias;
  int cols = a->cols;
  for (int r = begin; r < end; r++) {
    float *restrict row = a->out + (size_t)r * cols;
    for (int c = 0; c < cols; c++) row[c] += bias[c];
  }
}

void fm_add_bias(float *out, const float *bias, int32_t rows, int32_t cols) {
  BiasArgs a = {out, bias, cols};
  parallel_range(add_bias_rows, &a, rows, a.cols);
}

void fm_sum_rows(float *restrict dbias, const float *dout, int32_t rows, int32_t cols) {
  for (int r = 0; r < rows; r++) {
    const float *restrict row = dout + (size_t)r * cols;
    for (int c = 0; c < cols; c++) dbias[c] += row[c];
  }
}

typedef struct {
  float *out;
  const float *a, *b;
} ElementArgs;

static void relu_range(void *context, int begin, int end) {
  const ElementArgs *e = context;
  for (int i = begin; i < end; i++) e->out[i] = e->a[i] > 0 ? e->a[i] : 0;
}

void fm_relu(float *out, const float *inp, int32_t n) {
  ElementArgs e = {out, inp, NULL};
  parallel_range(relu_range, &e, n, 2);
}

// out = dinp, a = dout, b = the forward output.
static void relu_backward_range(void *context, int begin, int end) {
  const ElementArgs *e = context;
  float *restrict out = e->out;
  const float *restrict dout = e->a, *restrict forward = e->b;
  // Both loads unconditional, so the loop vectorises (a conditional load kept it scalar, 8x slower).
  for (int i = begin; i < end; i++) {
    float gradient = dout[i];
    out[i] = forward[i] > 0 ? gradient : 0;
  }
}

void fm_relu_backward(float *dinp, const float *dout, const float *out, int32_t n) {
  ElementArgs e = {dinp, dout, out};
  parallel_range(relu_backward_range, &e, n, 3);
}

// On the calling thread: split over the team, the MLP's 400 KB of gradients took longer
// (14-18 against 9-11 us a step).
void fm_zero(float *out, int32_t n) { memset(out, 0, sizeof(float) * (size_t)n); }

static void multiply_range(void *context, int begin, int end) {
  const ElementArgs *e = context;
  for (int i = begin; i < end; i++) e->out[i] = e->a[i] * e->b[i];
}

void fm_multiply(float *out, const float *a, const float *b, int32_t n) {
  ElementArgs e = {out, a, b};
  parallel_range(multiply_range, &e, n, 3);
}

typedef struct {
  float *average;
  const float *values;
  float decay;
} EmaArgs;

static void ema_range(void *context, int begin, int end) {
  const EmaArgs *e = context;
  float *restrict average = e->average;
  const float *restrict values = e->values;
  float keep = e->decay, take = 1 - e->decay;
  for (int i = begin; i < end; i++) average[i] = flush_subnormal(keep * average[i] + take * values[i]);
}

void fm_ema_update(float *average, const float *values, int32_t n, float decay) {
  EmaArgs e = {average, values, decay};
  parallel_range(ema_range, &e, n, 2);
}
