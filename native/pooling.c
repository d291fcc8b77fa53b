// 2x2 max pooling, stride 2, NHWC, forward and backward, split over the team by images.
#include <string.h>

#include "kernels.h"
#include "team.h"

typedef struct {
  float *out;  // forward: out; backward: dinp
  const float *inp, *dout, *pooled;
  int height, width, channels;
} PoolArgs;

static void max_pool_images(void *context, int begin, int end) {
  const PoolArgs *p = context;
  int height = p->height, width = p->width, channels = p->channels, oh = height / 2, ow = width / 2;
  for (int b = begin; b < end; b++)
    for (int y = 0; y < oh; y++)
      for (int x = 0; x < ow; x++) {
        float *o = p->out + (((size_t)b * oh + y) * ow + x) * channels;
        const float *i00 = p->inp + (((size_t)b * height + 2 * y) * width + 2 * x) * channels;
        const float *i01 = i00 + channels, *i10 = i00 + (size_t)width * channels, *i11 = i10 + channels;
        for (int c = 0; c < channels; c++) {
          float top = i00[c] > i01[c] ? i00[c] : i01[c];
          float bottom = i10[c] > i11[c] ? i10[c] : i11[c];
          o[c] = top > bottom ? top : bottom;
        }
      }
}

void fm_max_pool2x2(float *out, const float *inp, int32_t batch, int32_t height, int32_t width, int32_t channels) {
  PoolArgs p = {.out = out, .inp = inp, .height = height, .width = width, .channels = channels};
  // Split by images from 8K floats a part: one image to classify and its mirror image then pool
  // on the threads whose convolutions wrote them, where one thread would fetch the other's half.
  parallel_range_over(max_pool_images, &p, batch, 1.25 * p.height * p.width * p.channels, 1 << 13);
}

// One window position of every channel: x00..x11 the window's four inputs, m their maximum,
// g its gradient, d00..d11 the inputs' gradients. The first element equal to the maximum takes
// the gradient (the first one if none is, which only NaNs cause); every element is written and
// the conditions are combined bitwise, so the loop has no branch and vectorises.
static inline void max_pool_backward_window(float *restrict d00, float *restrict d01, float *restrict d10, float *restrict d11, const float *restrict x00,
                                            const float *restrict x01, const float *restrict x10, const float *restrict x11, const float *restrict m,
                                            const float *restrict g, int channels) {
  for (int c = 0; c < channels; c++) {
    int e00 = x00[c] == m[c], e01 = x01[c] == m[c], e10 = x10[c] == m[c], e11 = x11[c] == m[c];
    int t00 = e00 | !(e01 | e10 | e11);
    int t01 = !t00 & e01, t10 = !(t00 | e01) & e10, t11 = !(t00 | e01 | e10) & e11;
    d00[c] = t00 ? g[c] : 0.0f;
    d01[c] = t01 ? g[c] : 0.0f;
    d10[c] = t10 ? g[c] : 0.0f;
    d11[c] = t11 ? g[c] : 0.0f;
  }
}

static void max_pool_backward_images(void *context, int begin, int end) {
  const PoolArgs *p = context;
  int height = p->height, width = p->width, channels = p->channels, oh = height / 2, ow = width / 2;
  // An odd last row or column belongs to no window: only then is anything left to clear.
  if (height % 2 != 0 || width % 2 != 0) memset(p->out + (size_t)begin * height * width * channels, 0, sizeof(float) * (size_t)(end - begin) * height * width * channels);
  size_t row = (size_t)width * channels;
  for (int b = begin; b < end; b++)
    for (int y = 0; y < oh; y++)
      for (int x = 0; x < ow; x++) {
        size_t o = (((size_t)b * oh + y) * ow + x) * channels, i = (((size_t)b * height + 2 * y) * width + 2 * x) * channels;
        float *d = p->out + i;
        const float *in = p->inp + i;
        max_pool_backward_window(d, d + channels, d + row, d + row + channels, in, in + channels, in + row, in + row + channels, p->pooled + o, p->dout + o, channels);
      }
}

void fm_max_pool2x2_backward(float *dinp, const float *dout, const float *inp, const float *out, int32_t batch, int32_t height, int32_t width,
                             int32_t channels) {
  PoolArgs p = {.out = dinp, .dout = dout, .inp = inp, .pooled = out, .height = height, .width = width, .channels = channels};
  parallel_range(max_pool_backward_images, &p, batch, 3.0 * p.height * p.width * p.channels);
}
