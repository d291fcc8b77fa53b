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
  parallel_range(max_pool_images, &p, batch, 1.25 * p.height * p.width * p.channels);
}

static void max_pool_backward_images(void *context, int begin, int end) {
  const PoolArgs *p = context;
  int height = p->height, width = p->width, channels = p->channels, oh = height / 2, ow = width / 2;
  memset(p->out + (size_t)begin * height * width * channels, 0, sizeof(float) * (size_t)(end - begin) * height * width * channels);
  for (int b = begin; b < end; b++)
    for (int y = 0; y < oh; y++)
      for (int x = 0; x < ow; x++) {
        size_t o = (((size_t)b * oh + y) * ow + x) * channels;
        size_t i00 = (((size_t)b * height + 2 * y) * width + 2 * x) * channels;
        size_t window[4] = {i00, i00 + channels, i00 + (size_t)width * channels, i00 + (size_t)(width + 1) * channels};
        for (int c = 0; c < channels; c++) {
          // The first element of the window equal to the maximum takes the gradient.
          size_t winner = i00;
          for (int w = 0; w < 4; w++)
            if (p->inp[window[w] + c] == p->pooled[o + c]) {
              winner = window[w];
              break;
            }
          p->out[winner + c] = p->dout[o + c];
        }
      }
}

void fm_max_pool2x2_backward(float *dinp, const float *dout, const float *inp, const float *out, int32_t batch, int32_t height, int32_t width,
                             int32_t channels) {
  PoolArgs p = {.out = dinp, .dout = dout, .inp = inp, .pooled = out, .height = height, .width = width, .channels = channels};
  parallel_range(max_pool_backward_images, &p, batch, 3.0 * p.height * p.width * p.channels);
}
