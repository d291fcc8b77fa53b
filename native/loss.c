// The fused softmax and cross-entropy, forward and backward, in double where the sums are formed.
#include <math.h>

#include "kernels.h"

void fm_softmax_cross_entropy(float *probs, float *losses, const float *logits, const int32_t *labels, int32_t rows, int32_t cols, float smoothing) {
  for (int r = 0; r < rows; r++) {
    const float *in = logits + (size_t)r * cols;
    float *out = probs + (size_t)r * cols;
    double max = -INFINITY, sum = 0;
    for (int c = 0; c < cols; c++) max = fmax(max, (double)in[c]);
    for (int c = 0; c < cols; c++) {
      double e = exp((double)in[c] - max);
      out[c] = (float)e;
      sum += e;
    }
    for (int c = 0; c < cols; c++) out[c] = (float)((double)out[c] / sum);
    double log_sum = log(sum);
    if (smoothing > 0) {
      double log_all = 0;
      for (int c = 0; c < cols; c++) log_all += (double)in[c] - max - log_sum;
      losses[r] = (float)-((1 - (double)smoothing) * ((double)in[labels[r]] - max - log_sum) + ((double)smoothing / cols) * log_all);
    } else {
      losses[r] = (float)-((double)in[labels[r]] - max - log_sum);
    }
  }
}

void fm_softmax_cross_entropy_backward(float *dlogits, const float *probs, const int32_t *labels, int32_t rows, int32_t cols, float smoothing) {
  float scale = (float)(1.0 / rows);
  if (smoothing > 0) {
    // q = (1 - ε)·onehot + ε / cols
    float spread = smoothing / cols * scale, hit = (1 - smoothing) * scale;
    for (int r = 0; r < rows; r++) {
      for (int c = 0; c < cols; c++) dlogits[(size_t)r * cols + c] = probs[(size_t)r * cols + c] * scale - spread;
      dlogits[(size_t)r * cols + labels[r]] -= hit;
    }
    return;
  }
  for (int r = 0; r < rows; r++) {
    for (int c = 0; c < cols; c++) dlogits[(size_t)r * cols + c] = probs[(size_t)r * cols + c] * scale;
    dlogits[(size_t)r * cols + labels[r]] -= scale;
  }
}
