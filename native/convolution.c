// Convolution, NHWC, stride 1, "same" padding: im2col + sgemm over chunks of images, a direct
// loop for a 3x3 convolution of a single input channel, and the three convolution kernels, which hand 3x3
// convolutions with enough channels to winograd.c.
#include <stdlib.h>
#include <string.h>

#include "convolution.h"
#include "kernels.h"
#include "sgemm.h"
#include "team.h"
#include "winograd.h"

// Each thread's column buffer, grown as needed. The addon is called from one JavaScript thread
// at a time, and part p of a task runs on one team thread, so buffer p has one user at a time.
static float *columns[MAX_THREADS];
static size_t columns_floats[MAX_THREADS];

float *column_buffer(int part, size_t floats) {
  if (floats > columns_floats[part]) {
    free(columns[part]);
    columns[part] = malloc(sizeof(float) * floats);
    columns_floats[part] = columns[part] ? floats : 0;
  }
  return columns[part];
}

// Images per sgemm: about 1,000 rows (pixels), so that a thread's column matrix stays in its
// core's cache (measured on the reference CNN, 2 threads: 392-1568 rows alike, 4096 rows 10%
// slower, 8192 rows 25% slower).
static int chunk_images(const Conv *s) {
  int pixels = s->height * s->width;
  int chunk = (1024 + pixels - 1) / pixels;
  return chunk < s->batch ? chunk : s->batch;
}

static void im2col(float *col, const float *image, const Conv *s) {
  int pad = (s->kernel - 1) / 2, c = s->channels;
  size_t tap = sizeof(float) * c;
  for (int y = 0; y < s->height; y++)
    for (int x = 0; x < s->width; x++)
      for (int dy = 0; dy < s->kernel; dy++) {
        int sy = y + dy - pad;
        for (int dx = 0; dx < s->kernel; dx++) {
          int sx = x + dx - pad;
          if (sy >= 0 && sy < s->height && sx >= 0 && sx < s->width) memcpy(col, image + ((size_t)sy * s->width + sx) * c, tap);
          else memset(col, 0, tap);
          col += c;
        }
      }
}

static void col2im_add(float *image, const float *col, const Conv *s) {
  int pad = (s->kernel - 1) / 2, c = s->channels;
  for (int y = 0; y < s->height; y++)
    for (int x = 0; x < s->width; x++)
      for (int dy = 0; dy < s->kernel; dy++) {
        int sy = y + dy - pad;
        for (int dx = 0; dx < s->kernel; dx++) {
          int sx = x + dx - pad;
          if (sy >= 0 && sy < s->height && sx >= 0 && sx < s->width) {
            float *dst = image + ((size_t)sy * s->width + sx) * c;
            for (int i = 0; i < c; i++) dst[i] += col[i];
          }
          col += c;
        }
      }
}

typedef struct {
  Conv s;
  float *out;          // forward: out; backward input: dinp; backward weight: dweight
  const float *inp;    // forward, backward weight: the input images
  const float *dout;   // backward passes: the output gradient
  const float *weight; // forward, backward input
  float *partials;     // backward weight: a [taps, filters] sum per part after the first
  const float *bias;   // forward by the direct kernel: added to each output where given
  int relu;            // forward by the direct kernel: max(·, 0) after the bias
  int failed;          // a part could not get its column buffer
} ConvTask;

int conv_parts(const Conv *s) {
  int size = team_size();
  return s->batch < size ? s->batch : size;
}

// What a part of a convolution works with: its images [begin, end) and its column buffer.
typedef struct {
  int pixels, taps, chunk, begin, end;
  float *col;
} ConvPart;

static int conv_part(ConvTask *t, int part, int parts, ConvPart *c) {
  const Conv *s = &t->s;
  c->pixels = s->height * s->width;
  c->taps = s->kernel * s->kernel * s->channels;
  c->chunk = chunk_images(s);
  split_range(s->batch, part, parts, &c->begin, &c->end);
  c->col = column_buffer(part, (size_t)c->chunk * c->pixels * c->taps);
  if (!c->col) t->failed = 1;
  return c->col != NULL;
}

// Images [begin, end) of the forward pass: out = im2col(inp) · weight, chunk by chunk.
static void conv_forward_part(void *context, int part, int parts) {
  ConvTask *t = context;
  const Conv *s = &t->s;
  ConvPart c;
  if (!conv_part(t, part, parts, &c)) return;
  int pixels = c.pixels, taps = c.taps, chunk = c.chunk, begin = c.begin, end = c.end;
  float *col = c.col;
  for (int b0 = begin; b0 < end; b0 += chunk) {
    int images = end - b0 < chunk ? end - b0 : chunk;
    for (int i = 0; i < images; i++) im2col(col + (size_t)i * pixels * taps, t->inp + (size_t)(b0 + i) * pixels * s->channels, s);
    sgemm(0, 0, images * pixels, s->filters, taps, col, taps, t->weight, s->filters, 0, t->out + (size_t)b0 * pixels * s->filters, s->filters);
  }
}

// Images [begin, end) of the input gradient: dcol = dout · weightᵀ, then col2im into dinp.
static void conv_backward_input_part(void *context, int part, int parts) {
  ConvTask *t = context;
  const Conv *s = &t->s;
  ConvPart c;
  if (!conv_part(t, part, parts, &c)) return;
  int pixels = c.pixels, taps = c.taps, chunk = c.chunk, begin = c.begin, end = c.end;
  float *col = c.col;
  memset(t->out + (size_t)begin * pixels * s->channels, 0, sizeof(float) * (size_t)(end - begin) * pixels * s->channels);
  for (int b0 = begin; b0 < end; b0 += chunk) {
    int images = end - b0 < chunk ? end - b0 : chunk;
    sgemm(0, 1, images * pixels, taps, s->filters, t->dout + (size_t)b0 * pixels * s->filters, s->filters, t->weight, s->filters, 0, col, taps);
    for (int i = 0; i < images; i++) col2im_add(t->out + (size_t)(b0 + i) * pixels * s->channels, col + (size_t)i * pixels * taps, s);
  }
}

// Images [begin, end) of the weight gradient, colᵀ · dout: part 0 adds into dweight itself,
// the others into their own zeroed partial sums, added in after the join.
static void conv_backward_weight_part(void *context, int part, int parts) {
  ConvTask *t = context;
  const Conv *s = &t->s;
  ConvPart c;
  if (!conv_part(t, part, parts, &c)) return;
  int pixels = c.pixels, taps = c.taps, chunk = c.chunk, begin = c.begin, end = c.end;
  float *col = c.col;
  float *sum = part == 0 ? t->out : t->partials + (size_t)(part - 1) * taps * s->filters;
  if (part > 0) memset(sum, 0, sizeof(float) * (size_t)taps * s->filters);
  for (int b0 = begin; b0 < end; b0 += chunk) {
    int images = end - b0 < chunk ? end - b0 : chunk;
    for (int i = 0; i < images; i++) im2col(col + (size_t)i * pixels * taps, t->inp + (size_t)(b0 + i) * pixels * s->channels, s);
    sgemm(1, 0, taps, s->filters, images * pixels, col, taps, t->dout + (size_t)b0 * pixels * s->filters, s->filters, 1, sum, s->filters);
  }
}

// ---- A 3x3 convolution of a single input channel (the first layer): direct, no im2col ----
// im2col would copy one float per tap and hand sgemm products of depth 9, both mostly overhead;
// here each output pixel sums 9 scaled filter rows, LANES filters at a time held in registers.
#define LANES 16

// LANES floats as one value of GCC's vector extension (two or one registers, by the machine).
typedef float Vec __attribute__((vector_size(sizeof(float) * LANES)));

static inline Vec load_vec(const float *p) {
  Vec v;
  memcpy(&v, p, sizeof v);
  return v;
}

// The 3x3 window around pixel (y, x) of a one-channel image, zeros beyond its edge.
static void window3(float v[9], const float *image, int y, int x, int height, int width) {
  for (int dy = 0; dy < 3; dy++)
    for (int dx = 0; dx < 3; dx++) {
      int sy = y + dy - 1, sx = x + dx - 1;
      v[3 * dy + dx] = sy >= 0 && sy < height && sx >= 0 && sx < width ? image[sy * width + sx] : 0.0f;
    }
}

static int direct_applies(const Conv *s) { return s->channels == 1 && s->kernel == 3; }

// Rows [begin, end) of the forward pass, counted over all the images (so that one image splits
// too): out[p][·] = Σ_tap window[tap] · weight[tap][·].
static void direct_forward_part(void *context, int part, int parts) {
  ConvTask *t = context;
  const Conv *s = &t->s;
  int begin, end, filters = s->filters;
  split_range(s->batch * s->height, part, parts, &begin, &end);
  for (int row = begin; row < end; row++) {
    int b = row / s->height, y = row % s->height;
    const float *image = t->inp + (size_t)b * s->height * s->width;
    for (int x = 0; x < s->width; x++) {
      float v[9], *o = t->out + (((size_t)b * s->height + y) * s->width + x) * filters;
      window3(v, image, y, x, s->height, s->width);
      int f0 = 0;
      for (; f0 + LANES <= filters; f0 += LANES) {
        Vec acc = {0};
        for (int tap = 0; tap < 9; tap++) acc += v[tap] * load_vec(t->weight + tap * filters + f0);
        if (t->bias) acc += load_vec(t->bias + f0);
        if (t->relu)
          for (int l = 0; l < LANES; l++) acc[l] = acc[l] > 0 ? acc[l] : 0;
        memcpy(o + f0, &acc, sizeof acc);
      }
      for (int f = f0; f < filters; f++) {
        float acc = 0.0f;
        for (int tap = 0; tap < 9; tap++) acc += v[tap] * t->weight[tap * filters + f];
        if (t->bias) acc += t->bias[f];
        if (t->relu) acc = acc > 0 ? acc : 0;
        o[f] = acc;
      }
    }
  }
}

// Images [begin, end) of the weight gradient: Σ_p window_p[tap] · dout[p][·] for every tap, in
// registers, added to dweight by part 0 and to their own partial sums by the others.
static void direct_weight_part(void *context, int part, int parts) {
  ConvTask *t = context;
  const Conv *s = &t->s;
  int begin, end, filters = s->filters;
  float *sum = part == 0 ? t->out : t->partials + (size_t)(part - 1) * 9 * filters;
  if (part > 0) memset(sum, 0, sizeof(float) * 9 * filters);
  split_range(s->batch, part, parts, &begin, &end);
  int f0 = 0;
  for (; f0 + LANES <= filters; f0 += LANES) {
    Vec acc[9] = {{0}};
    for (int b = begin; b < end; b++) {
      const float *image = t->inp + (size_t)b * s->height * s->width;
      for (int y = 0; y < s->height; y++)
        for (int x = 0; x < s->width; x++) {
          float v[9];
          window3(v, image, y, x, s->height, s->width);
          Vec g = load_vec(t->dout + (((size_t)b * s->height + y) * s->width + x) * filters + f0);
          for (int tap = 0; tap < 9; tap++) acc[tap] += v[tap] * g;
        }
    }
    for (int tap = 0; tap < 9; tap++)
      for (int l = 0; l < LANES; l++) sum[tap * filters + f0 + l] += acc[tap][l];
  }
  for (int f = f0; f < filters; f++) {
    float acc[9] = {0};
    for (int b = begin; b < end; b++) {
      const float *image = t->inp + (size_t)b * s->height * s->width;
      for (int y = 0; y < s->height; y++)
        for (int x = 0; x < s->width; x++) {
          float v[9];
          window3(v, image, y, x, s->height, s->width);
          float g = t->dout[(((size_t)b * s->height + y) * s->width + x) * filters + f];
          for (int tap = 0; tap < 9; tap++) acc[tap] += v[tap] * g;
        }
    }
    for (int tap = 0; tap < 9; tap++) sum[tap * filters + f] += acc[tap];
  }
}

typedef struct {
  float *out;
  const float *bias;
  int cols, relu;
} BiasRelu;

static void bias_relu_rows(void *context, int begin, int end) {
  const BiasRelu *a = context;
  const float *restrict bias = a->bias;
  for (int r = begin; r < end; r++) {
    float *restrict row = a->out + (size_t)r * a->cols;
    for (int c = 0; c < a->cols; c++) {
      float v = row[c] + bias[c];
      row[c] = a->relu && !(v > 0) ? 0 : v;
    }
  }
}

// The forward pass where Winograd does not apply: the direct kernel (one input channel), which
// adds t->bias and applies t->relu as it writes each output, or im2col products by images, after
// which the same is done in a pass split over the team by images as the products were.
static int conv_forward_other(ConvTask *t) {
  const Conv *s = &t->s;
  if (direct_applies(s)) {
    parallel(direct_forward_part, t, parts_for((double)s->batch * s->height * s->width * s->filters * 9, 32768));
    return 1;
  }
  parallel(conv_forward_part, t, conv_parts(s));
  if (t->failed) return 0;
  if (t->bias) {
    BiasRelu a = {t->out, t->bias, s->filters, t->relu};
    parallel_range(bias_relu_rows, &a, s->batch * s->height * s->width, s->filters);
  }
  return 1;
}

int32_t fm_conv2d(float *out, const float *inp, const float *weight, int32_t batch, int32_t height, int32_t width, int32_t in_channels,
                  int32_t out_channels, int32_t kernel_size) {
  ConvTask t = {.s = {batch, height, width, in_channels, out_channels, kernel_size}, .out = out, .inp = inp, .weight = weight};
  if (winograd_applies(&t.s)) return winograd_convolve(t.out, t.inp, t.weight, &t.s, 0);
  return conv_forward_other(&t);
}

// The convolution, its bias and (where `relu`) its ReLU, for the weight as fm_conv2d_prepare left it.
int32_t fm_conv2d_prepared(float *out, const float *inp, const float *prepared, const float *bias, int32_t batch, int32_t height, int32_t width,
                           int32_t in_channels, int32_t out_channels, int32_t kernel_size, int32_t relu) {
  ConvTask t = {.s = {batch, height, width, in_channels, out_channels, kernel_size}, .out = out, .inp = inp, .weight = prepared, .bias = bias, .relu = relu};
  if (winograd_applies(&t.s)) return winograd_convolve_prepared(out, inp, prepared + (size_t)9 * in_channels * out_channels, &t.s, bias, relu);
  return conv_forward_other(&t);
}

int32_t fm_conv2d_backward_input(float *dinp, const float *dout, const float *weight, int32_t batch, int32_t height, int32_t width,
                                 int32_t in_channels, int32_t out_channels, int32_t kernel_size) {
  ConvTask t = {.s = {batch, height, width, in_channels, out_channels, kernel_size}, .out = dinp, .dout = dout, .weight = weight};
  if (winograd_applies(&t.s)) return winograd_convolve(t.out, t.dout, t.weight, &t.s, 1);
  parallel(conv_backward_input_part, &t, conv_parts(&t.s));
  return !t.failed;
}

// dweight += colᵀ · dout
int32_t fm_conv2d_backward_weight(float *dweight, const float *inp, const float *dout, int32_t batch, int32_t height, int32_t width,
                                  int32_t in_channels, int32_t out_channels, int32_t kernel_size) {
  ConvTask t = {.s = {batch, height, width, in_channels, out_channels, kernel_size}, .out = dweight, .inp = inp, .dout = dout};
  if (winograd_applies(&t.s)) return winograd_weight_gradient(t.out, t.inp, t.dout, &t.s);
  int parts = conv_parts(&t.s);
  size_t size = (size_t)t.s.kernel * t.s.kernel * t.s.channels * t.s.filters;
  if (!reserve_partials(parts, size)) return 0;
  t.partials = partials;
  parallel(direct_applies(&t.s) ? direct_weight_part : conv_backward_weight_part, &t, parts);
  if (t.failed) return 0;
  add_partial_sums(t.out, t.partials, parts - 1, size);
  return 1;
}
