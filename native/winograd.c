// Winograd F(2x2, 3x3): the 3x3 convolutions with 2.25x fewer multiplications.
#include <cblas.h>
#include <stdlib.h>
#include <string.h>

#include "convolution.h"
#include "team.h"
#include "winograd.h"

// Each 2x2 block of outputs ("tile") is Aᵀ [ Σ_c (G g Gᵀ) ⊙ (Bᵀ d B) ] A, where d is the 4x4
// input window around the tile and g a 3x3 filter. With the transformed inputs V[ξ][tile][c]
// and filters U[ξ][c][k] (ξ = 4i + j, the 16 positions of the 4x4 transform), the sum over
// channels is 16 matrix products M[ξ] = V[ξ] · U[ξ]. Lavin & Gray, "Fast Algorithms for
// Convolutional Neural Networks" (2016). Used where both channel counts are at least
// WINOGRAD_MIN_CHANNELS (a 1-channel input makes products of depth 1; im2col is faster there).
#define WINOGRAD_MIN_CHANNELS 8

// U = G g Gᵀ for every (a, b) of [in, out], G = [1 0 0; ½ ½ ½; ½ -½ ½; 0 0 1]. The forward pass
// reads g from weight [3][3][in][out]; the input gradient (`flip`) is the forward convolution of
// the output gradient with the filters turned by 180 degrees and in/out exchanged, so it reads
// g[y][x] = weight[2-y][2-x][b][a] of a weight stored [3][3][out][in].
static void winograd_transform_filters(float *u, const float *weight, int in, int out, int flip) {
  size_t plane = (size_t)in * out;
  for (int a = 0; a < in; a++)
    for (int b = 0; b < out; b++) {
      float g[9], t[12];
      for (int tap = 0; tap < 9; tap++) g[tap] = flip ? weight[(size_t)(8 - tap) * plane + (size_t)b * in + a] : weight[(size_t)tap * plane + (size_t)a * out + b];
      for (int x = 0; x < 3; x++) {
        t[x] = g[x];
        t[3 + x] = 0.5f * (g[x] + g[3 + x] + g[6 + x]);
        t[6 + x] = 0.5f * (g[x] - g[3 + x] + g[6 + x]);
        t[9 + x] = g[6 + x];
      }
      float *dst = u + (size_t)a * out + b;
      for (int i = 0; i < 4; i++) {
        const float *r = t + 3 * i;
        dst[(4 * i + 0) * plane] = r[0];
        dst[(4 * i + 1) * plane] = 0.5f * (r[0] + r[1] + r[2]);
        dst[(4 * i + 2) * plane] = 0.5f * (r[0] - r[1] + r[2]);
        dst[(4 * i + 3) * plane] = r[2];
      }
    }
}

// V[ξ][tile][·] = Bᵀ d B for one tile, all channels at once (NHWC: each window pixel is a
// contiguous channel vector), Bᵀ = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1].
static void winograd_input_tile(float *restrict v, size_t stride, const float *const *d, int channels) {
  // The window's rows as named pointers, so that the channel loop vectorizes.
  const float *restrict a0 = d[0], *restrict a1 = d[1], *restrict a2 = d[2], *restrict a3 = d[3];
  const float *restrict b0 = d[4], *restrict b1 = d[5], *restrict b2 = d[6], *restrict b3 = d[7];
  const float *restrict c0 = d[8], *restrict c1 = d[9], *restrict c2 = d[10], *restrict c3 = d[11];
  const float *restrict e0 = d[12], *restrict e1 = d[13], *restrict e2 = d[14], *restrict e3 = d[15];
  float *restrict v0 = v, *restrict v1 = v + stride, *restrict v2 = v + 2 * stride, *restrict v3 = v + 3 * stride;
  float *restrict v4 = v + 4 * stride, *restrict v5 = v + 5 * stride, *restrict v6 = v + 6 * stride, *restrict v7 = v + 7 * stride;
  float *restrict v8 = v + 8 * stride, *restrict v9 = v + 9 * stride, *restrict v10 = v + 10 * stride, *restrict v11 = v + 11 * stride;
  float *restrict v12 = v + 12 * stride, *restrict v13 = v + 13 * stride, *restrict v14 = v + 14 * stride, *restrict v15 = v + 15 * stride;
  // (ivdep: the stores never overlap the loads; without it GCC 12 gives up on 32 pointers.)
#pragma GCC ivdep
  for (int c = 0; c < channels; c++) {
    // Rows: Bᵀ d (row 0 - row 2, row 1 + row 2, row 2 - row 1, row 1 - row 3), column by column.
    float r00 = a0[c] - c0[c], r01 = a1[c] - c1[c], r02 = a2[c] - c2[c], r03 = a3[c] - c3[c];
    float r10 = b0[c] + c0[c], r11 = b1[c] + c1[c], r12 = b2[c] + c2[c], r13 = b3[c] + c3[c];
    float r20 = c0[c] - b0[c], r21 = c1[c] - b1[c], r22 = c2[c] - b2[c], r23 = c3[c] - b3[c];
    float r30 = b0[c] - e0[c], r31 = b1[c] - e1[c], r32 = b2[c] - e2[c], r33 = b3[c] - e3[c];
    // Then the same combination across each row: (Bᵀ d) B.
    v0[c] = r00 - r02, v1[c] = r01 + r02, v2[c] = r02 - r01, v3[c] = r01 - r03;
    v4[c] = r10 - r12, v5[c] = r11 + r12, v6[c] = r12 - r11, v7[c] = r11 - r13;
    v8[c] = r20 - r22, v9[c] = r21 + r22, v10[c] = r22 - r21, v11[c] = r21 - r23;
    v12[c] = r30 - r32, v13[c] = r31 + r32, v14[c] = r32 - r31, v15[c] = r31 - r33;
  }
}

// The 2x2 outputs of one tile, Aᵀ m A with Aᵀ = [1 1 1 0; 0 1 -1 -1], into o[0..3] (row-major).
static void winograd_output_tile(float *const *o, const float *restrict m, size_t stride, int channels) {
  float *restrict o0 = o[0], *restrict o1 = o[1], *restrict o2 = o[2], *restrict o3 = o[3];
  const float *restrict m0 = m, *restrict m1 = m + stride, *restrict m2 = m + 2 * stride, *restrict m3 = m + 3 * stride;
  const float *restrict m4 = m + 4 * stride, *restrict m5 = m + 5 * stride, *restrict m6 = m + 6 * stride, *restrict m7 = m + 7 * stride;
  const float *restrict m8 = m + 8 * stride, *restrict m9 = m + 9 * stride, *restrict m10 = m + 10 * stride, *restrict m11 = m + 11 * stride;
  const float *restrict m12 = m + 12 * stride, *restrict m13 = m + 13 * stride, *restrict m14 = m + 14 * stride, *restrict m15 = m + 15 * stride;
#pragma GCC ivdep
  for (int k = 0; k < channels; k++) {
    // Aᵀ m: row 0 + row 1 + row 2, row 1 - row 2 - row 3; then the same across each row.
    float t0 = m0[k] + m4[k] + m8[k], t1 = m1[k] + m5[k] + m9[k], t2 = m2[k] + m6[k] + m10[k], t3 = m3[k] + m7[k] + m11[k];
    float u0 = m4[k] - m8[k] - m12[k], u1 = m5[k] - m9[k] - m13[k], u2 = m6[k] - m10[k] - m14[k], u3 = m7[k] - m11[k] - m15[k];
    o0[k] = t0 + t1 + t2, o1[k] = t1 - t2 - t3;
    o2[k] = u0 + u1 + u2, o3[k] = u1 - u2 - u3;
  }
}

// The adjoint of the output transform for one tile: dM[ξ][tile][·] = A dy Aᵀ for the tile's 2x2
// output gradients dy[0..3] (row-major), A = [1 0; 1 1; 1 -1; 0 -1].
static void winograd_output_gradient_tile(float *restrict dm, size_t stride, const float *const *dy, int channels) {
  const float *restrict y0 = dy[0], *restrict y1 = dy[1], *restrict y2 = dy[2], *restrict y3 = dy[3];
  float *restrict d0 = dm, *restrict d1 = dm + stride, *restrict d2 = dm + 2 * stride, *restrict d3 = dm + 3 * stride;
  float *restrict d4 = dm + 4 * stride, *restrict d5 = dm + 5 * stride, *restrict d6 = dm + 6 * stride, *restrict d7 = dm + 7 * stride;
  float *restrict d8 = dm + 8 * stride, *restrict d9 = dm + 9 * stride, *restrict d10 = dm + 10 * stride, *restrict d11 = dm + 11 * stride;
  float *restrict d12 = dm + 12 * stride, *restrict d13 = dm + 13 * stride, *restrict d14 = dm + 14 * stride, *restrict d15 = dm + 15 * stride;
#pragma GCC ivdep
  for (int k = 0; k < channels; k++) {
    // A dy: rows (y0 y1), (y0+y2 y1+y3), (y0-y2 y1-y3), (-y2 -y3); then each row (p q) -> (p, p+q, p-q, -q).
    float p0 = y0[k], q0 = y1[k], p1 = y0[k] + y2[k], q1 = y1[k] + y3[k];
    float p2 = y0[k] - y2[k], q2 = y1[k] - y3[k], p3 = -y2[k], q3 = -y3[k];
    d0[k] = p0, d1[k] = p0 + q0, d2[k] = p0 - q0, d3[k] = -q0;
    d4[k] = p1, d5[k] = p1 + q1, d6[k] = p1 - q1, d7[k] = -q1;
    d8[k] = p2, d9[k] = p2 + q2, d10[k] = p2 - q2, d11[k] = -q2;
    d12[k] = p3, d13[k] = p3 + q3, d14[k] = p3 - q3, d15[k] = -q3;
  }
}

// The adjoint of the filter transform: weight[tap][a][b] += (Gᵀ dU G) for every (a, b) of
// dU [16, in, out], Gᵀ = [1 ½ ½ 0; 0 ½ -½ 0; 0 ½ ½ 1].
static void winograd_filter_gradient(float *weight, const float *du, int in, int out) {
  size_t plane = (size_t)in * out;
  for (size_t i = 0; i < plane; i++) {
    float t[12];
    for (int x = 0; x < 4; x++) {
      float u0 = du[x * plane + i], u1 = du[(4 + x) * plane + i], u2 = du[(8 + x) * plane + i], u3 = du[(12 + x) * plane + i];
      t[x] = u0 + 0.5f * (u1 + u2);
      t[4 + x] = 0.5f * (u1 - u2);
      t[8 + x] = 0.5f * (u1 + u2) + u3;
    }
    for (int y = 0; y < 3; y++) {
      const float *r = t + 4 * y;
      weight[(3 * y + 0) * plane + i] += r[0] + 0.5f * (r[1] + r[2]);
      weight[(3 * y + 1) * plane + i] += 0.5f * (r[1] - r[2]);
      weight[(3 * y + 2) * plane + i] += 0.5f * (r[1] + r[2]) + r[3];
    }
  }
}

// The address of pixel (y, x) of an image [height, width, channels], or `outside` beyond its
// edge: zeros for the padding read around the input, a discard row for a tile's outputs past an
// odd edge (the caller's pointer type decides which; the helper only reads the address).
static const float *pixel_or(const float *image, int y, int x, int height, int width, int channels, const float *outside) {
  return y >= 0 && y < height && x >= 0 && x < width ? image + ((size_t)y * width + x) * channels : outside;
}

// V [16, tiles, channels] for the tiles of `images` images from `first` on, tile by tile.
static void winograd_inputs(float *v, const float *first, int images, int height, int width, int channels, const float *zeros) {
  int tiles_y = (height + 1) / 2, tiles_x = (width + 1) / 2;
  size_t stride = (size_t)images * tiles_y * tiles_x * channels, tile = 0;
  for (int i = 0; i < images; i++) {
    const float *image = first + (size_t)i * height * width * channels;
    for (int ty = 0; ty < tiles_y; ty++)
      for (int tx = 0; tx < tiles_x; tx++, tile++) {
        const float *d[16];
        for (int y = 0; y < 4; y++)
          for (int x = 0; x < 4; x++) d[4 * y + x] = pixel_or(image, 2 * ty - 1 + y, 2 * tx - 1 + x, height, width, channels, zeros);
        winograd_input_tile(v + tile * channels, stride, d, channels);
      }
  }
}

// Tiles per chunk of images, so that a chunk's V and M stay in the core's cache (measured on the
// reference CNN's layers, 2 threads: 64-128 tiles alike, 512 12% slower, 1024 30% slower; the
// weight gradient alike).
#define WINOGRAD_CHUNK_TILES 128

typedef struct {
  int batch, height, width, in, out;
  float *dst;         // forward: [batch, height, width, out], overwritten; weight gradient: dU [parts, 16, in, out]
  const float *src;   // [batch, height, width, in]
  const float *dout;  // weight gradient: [batch, height, width, out]
  const float *u;     // forward: [16, in, out]
  const float *zeros; // max(in, out) zeros: the padding around the image
  int failed;
} Winograd;

// Images [begin, end) of a part, in chunks of `chunk` images, and the part's buffer of
// `floats_per_tile` floats per tile of a chunk plus `extra` floats.
typedef struct {
  int begin, end, chunk, tiles_y, tiles_x, per_image;
  float *buffer;
} WinogradPart;

static int winograd_part_setup(Winograd *t, int part, int parts, int chunk_tiles, size_t floats_per_tile, size_t extra, WinogradPart *w) {
  w->tiles_y = (t->height + 1) / 2;
  w->tiles_x = (t->width + 1) / 2;
  w->per_image = w->tiles_y * w->tiles_x;
  w->chunk = (chunk_tiles + w->per_image - 1) / w->per_image;
  split_range(t->batch, part, parts, &w->begin, &w->end);
  if (w->chunk > w->end - w->begin) w->chunk = w->end - w->begin;
  if (w->chunk <= 0) return 0;
  w->buffer = column_buffer(part, floats_per_tile * w->chunk * w->per_image + extra);
  if (!w->buffer) t->failed = 1;
  return w->buffer != NULL;
}

// Forward, images [begin, end): transform a chunk's input tiles, 16 products, transform back.
static void winograd_forward_part(void *context, int part, int parts) {
  Winograd *t = context;
  WinogradPart w;
  // V [16, tiles, in], M [16, tiles, out], then one output row where outputs beyond the image go.
  if (!winograd_part_setup(t, part, parts, WINOGRAD_CHUNK_TILES, 16 * (size_t)(t->in + t->out), t->out, &w)) return;
  size_t most = (size_t)w.chunk * w.per_image;
  float *v = w.buffer, *m = v + 16 * most * t->in, *discard = m + 16 * most * t->out;
  size_t image_in = (size_t)t->height * t->width * t->in, image_out = (size_t)t->height * t->width * t->out;
  for (int b0 = w.begin; b0 < w.end; b0 += w.chunk) {
    int images = w.end - b0 < w.chunk ? w.end - b0 : w.chunk;
    size_t tiles = (size_t)images * w.per_image, tile = 0;
    winograd_inputs(v, t->src + b0 * image_in, images, t->height, t->width, t->in, t->zeros);
    for (int xi = 0; xi < 16; xi++)
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)tiles, t->out, t->in, 1.0f, v + xi * tiles * t->in, t->in,
                  t->u + (size_t)xi * t->in * t->out, t->out, 0.0f, m + xi * tiles * t->out, t->out);
    for (int i = 0; i < images; i++) {
      float *image = t->dst + (b0 + i) * image_out;
      for (int ty = 0; ty < w.tiles_y; ty++)
        for (int tx = 0; tx < w.tiles_x; tx++, tile++) {
          float *o[4];
          for (int y = 0; y < 2; y++)
            for (int x = 0; x < 2; x++)
              o[2 * y + x] = (float *)pixel_or(image, 2 * ty + y, 2 * tx + x, t->height, t->width, t->out, discard);
          winograd_output_tile(o, m + tile * t->out, tiles * t->out, t->out);
        }
    }
  }
}

// Weight gradient, images [begin, end): dU[ξ] += V[ξ]ᵀ · dM[ξ] over a chunk's tiles, into this
// part's own dU (summed in a fixed order after the join, so that runs repeat exactly).
static void winograd_weight_part(void *context, int part, int parts) {
  Winograd *t = context;
  float *du = t->dst + (size_t)part * 16 * t->in * t->out;
  memset(du, 0, sizeof(float) * 16 * t->in * t->out);
  WinogradPart w;
  // V [16, tiles, in], dM [16, tiles, out].
  if (!winograd_part_setup(t, part, parts, WINOGRAD_CHUNK_TILES, 16 * (size_t)(t->in + t->out), 0, &w)) return;
  size_t most = (size_t)w.chunk * w.per_image;
  float *v = w.buffer, *dm = v + 16 * most * t->in;
  size_t image_in = (size_t)t->height * t->width * t->in, image_out = (size_t)t->height * t->width * t->out;
  for (int b0 = w.begin; b0 < w.end; b0 += w.chunk) {
    int images = w.end - b0 < w.chunk ? w.end - b0 : w.chunk;
    size_t tiles = (size_t)images * w.per_image, tile = 0;
    winograd_inputs(v, t->src + b0 * image_in, images, t->height, t->width, t->in, t->zeros);
    for (int i = 0; i < images; i++) {
      const float *image = t->dout + (b0 + i) * image_out;
      for (int ty = 0; ty < w.tiles_y; ty++)
        for (int tx = 0; tx < w.tiles_x; tx++, tile++) {
          const float *dy[4];
          for (int y = 0; y < 2; y++)
            for (int x = 0; x < 2; x++) dy[2 * y + x] = pixel_or(image, 2 * ty + y, 2 * tx + x, t->height, t->width, t->out, t->zeros);
          winograd_output_gradient_tile(dm + tile * t->out, tiles * t->out, dy, t->out);
        }
    }
    for (int xi = 0; xi < 16; xi++)
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, t->in, t->out, (int)tiles, 1.0f, v + xi * tiles * t->in, t->in,
                  dm + xi * tiles * t->out, t->out, 1.0f, du + (size_t)xi * t->in * t->out, t->out);
  }
}

int winograd_applies(const Conv *s) {
  return s->kernel == 3 && s->channels >= WINOGRAD_MIN_CHANNELS && s->filters >= WINOGRAD_MIN_CHANNELS;
}

static float *winograd_filters = NULL, *winograd_zeros = NULL;
static size_t winograd_filters_floats = 0, winograd_zeros_floats = 0;

// Grows the filter buffer to `floats` and the zeros to `zeros`; 0 when out of memory.
static int winograd_buffers(size_t floats, size_t zeros) {
  if (floats > winograd_filters_floats) {
    free(winograd_filters);
    winograd_filters = malloc(sizeof(float) * floats);
    winograd_filters_floats = winograd_filters ? floats : 0;
    if (!winograd_filters) return 0;
  }
  if (zeros > winograd_zeros_floats) {
    free(winograd_zeros);
    winograd_zeros = calloc(zeros, sizeof(float));
    winograd_zeros_floats = winograd_zeros ? zeros : 0;
    if (!winograd_zeros) return 0;
  }
  return 1;
}

int winograd_convolve(float *dst, const float *src, const float *weight, const Conv *s, int flip) {
  int in = flip ? s->filters : s->channels, out = flip ? s->channels : s->filters;
  if (!winograd_buffers((size_t)16 * in * out, in)) return 0;
  winograd_transform_filters(winograd_filters, weight, in, out, flip);
  Winograd t = {s->batch, s->height, s->width, in, out, dst, src, NULL, winograd_filters, winograd_zeros, 0};
  parallel(winograd_forward_part, &t, conv_parts(s));
  return !t.failed;
}

int winograd_weight_gradient(float *dweight, const float *inp, const float *dout, const Conv *s) {
  int parts = conv_parts(s);
  size_t plane = (size_t)16 * s->channels * s->filters;
  size_t zeros = s->channels > s->filters ? s->channels : s->filters;
  if (!winograd_buffers(parts * plane, zeros)) return 0;
  Winograd t = {s->batch, s->height, s->width, s->channels, s->filters, winograd_filters, inp, dout, NULL, winograd_zeros, 0};
  parallel(winograd_weight_part, &t, parts);
  if (t.failed) return 0;
  add_partial_sums(winograd_filters, winograd_filters + plane, parts - 1, plane);
  winograd_filter_gradient(dweight, winograd_filters, s->channels, s->filters);
  return 1;
}
