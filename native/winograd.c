// Winograd F(4x4, 3x3): the 3x3 convolutions with 4x fewer multiplications than direct.
#include <stdlib.h>
#include <string.h>

#include "convolution.h"
#include "kernels.h"
#include "sgemm.h"
#include "team.h"
#include "winograd.h"

// Each 4x4 block of outputs ("tile") is Aᵀ [ Σ_c (G g Gᵀ) ⊙ (Bᵀ d B) ] A, where d is the 6x6
// input window around the tile and g a 3x3 filter. With the transformed inputs V[tile][ξ][c]
// and filters U[ξ][c][k] (ξ = 6i + j, the 36 positions of the transform), the sum over channels
// is 36 matrix products M[ξ] = V[ξ] · U[ξ]. Lavin & Gray, "Fast Algorithms for Convolutional
// Neural Networks" (2016). Used where both channel counts are at least WINOGRAD_MIN_CHANNELS (a
// 1-channel input makes products of depth 1; convolution.c convolves it directly).
//
// It replaced F(2x2, 3x3): the reference CNN's training step (batch 64, 1 thread, AMD Zen 4)
// takes 53 ms against 69. Laying each tile's 36 values out together mattered as much as the
// smaller count of products (docs/performance.md, "Convolutions"). WINOGRAD_MIN_CHANNELS comes
// from the kernel table (kernels.h), which also says when conv2dPrepare writes the transform.

// ---- The transforms (Lavin & Gray's points 0, ±1, ±2) ----
//
// Bᵀ = [4 0 -5 0 1 0; 0 -4 -4 1 1 0; 0 4 -4 -1 1 0; 0 -2 -1 2 1 0; 0 2 -1 -2 1 0; 0 4 0 -5 0 1],
// G = [¼ 0 0; -⅙ -⅙ -⅙; -⅙ ⅙ -⅙; 1/24 1/12 ⅙; 1/24 -1/12 ⅙; 0 0 1],
// Aᵀ = [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 0; 0 1 -1 8 -8 1].
// The tile transforms work on LANES channels at a time, held in small arrays, so that each
// one-dimensional transform below is one vector operation per term.
#define LANES 16

typedef float Lanes[LANES];

// y = Bᵀ x for the 6 vectors x[0], x[s], ..., x[5s], into y[0], y[t], ..., y[5t].
static inline __attribute__((always_inline)) void f4_input_1d(Lanes *restrict y, int t, const Lanes *restrict x, int s) {
  for (int l = 0; l < LANES; l++) {
    float x0 = x[0][l], x1 = x[s][l], x2 = x[2 * s][l], x3 = x[3 * s][l], x4 = x[4 * s][l], x5 = x[5 * s][l];
    y[0][l] = 4.0f * x0 - 5.0f * x2 + x4;
    y[t][l] = (x3 + x4) - 4.0f * (x1 + x2);
    y[2 * t][l] = 4.0f * (x1 - x2) + (x4 - x3);
    y[3 * t][l] = 2.0f * (x3 - x1) + (x4 - x2);
    y[4 * t][l] = 2.0f * (x1 - x3) + (x4 - x2);
    y[5 * t][l] = 4.0f * x1 - 5.0f * x3 + x5;
  }
}

// y = Aᵀ x: the 4 outputs of the 6 vectors x[0], x[s], ..., x[5s], into y[0], y[t], y[2t], y[3t].
static inline __attribute__((always_inline)) void f4_output_1d(Lanes *restrict y, int t, const Lanes *restrict x, int s) {
  for (int l = 0; l < LANES; l++) {
    float x0 = x[0][l], x1 = x[s][l], x2 = x[2 * s][l], x3 = x[3 * s][l], x4 = x[4 * s][l], x5 = x[5 * s][l];
    float p12 = x1 + x2, m12 = x1 - x2, p34 = x3 + x4, m34 = x3 - x4;
    y[0][l] = x0 + p12 + p34;
    y[t][l] = m12 + 2.0f * m34;
    y[2 * t][l] = p12 + 4.0f * p34;
    y[3 * t][l] = m12 + 8.0f * m34 + x5;
  }
}

// y = A x, the adjoint of the output transform: 6 values from the 4 vectors x[0], ..., x[3s].
static inline __attribute__((always_inline)) void f4_output_gradient_1d(Lanes *restrict y, int t, const Lanes *restrict x, int s) {
  for (int l = 0; l < LANES; l++) {
    float x0 = x[0][l], x1 = x[s][l], x2 = x[2 * s][l], x3 = x[3 * s][l];
    float even = x0 + x2, odd = x1 + x3, even4 = x0 + 4.0f * x2, odd8 = 2.0f * x1 + 8.0f * x3;
    y[0][l] = x0;
    y[t][l] = even + odd;
    y[2 * t][l] = even - odd;
    y[3 * t][l] = even4 + odd8;
    y[4 * t][l] = even4 - odd8;
    y[5 * t][l] = x3;
  }
}

// Copies `n` floats of each of `count` rows (row p at rows[p] + c) into a[p], zeros after them.
// (A full block copies a constant size, which the compiler turns into vector moves.)
static inline __attribute__((always_inline)) void load_lanes(Lanes *a, const float *const *rows, int count, int c, int n) {
  if (n == LANES) {
    for (int p = 0; p < count; p++) memcpy(a[p], rows[p] + c, sizeof(Lanes));
    return;
  }
  for (int p = 0; p < count; p++) {
    memcpy(a[p], rows[p] + c, sizeof(float) * n);
    memset(a[p] + n, 0, sizeof(float) * (LANES - n));
  }
}

// Copies a[p] to rows[p] + c for `count` rows, `n` floats each.
static inline __attribute__((always_inline)) void store_lanes(float *const *rows, const Lanes *a, int count, int c, int n) {
  if (n == LANES)
    for (int p = 0; p < count; p++) memcpy(rows[p] + c, a[p], sizeof(Lanes));
  else
    for (int p = 0; p < count; p++) memcpy(rows[p] + c, a[p], sizeof(float) * n);
}

// Rows p·stride of a strided array, as the row pointers load_lanes and store_lanes take.
static inline __attribute__((always_inline)) void strided_rows(float **rows, float *first, size_t stride, int count) {
  for (int p = 0; p < count; p++) rows[p] = first + p * stride;
}

// V[ξ][tile][·] = Bᵀ d B for one tile, ξ = 6i + j.
static void f4_input_tile(float *restrict v, size_t stride, const float *const *d, int channels) {
  float *rows[36];
  strided_rows(rows, v, stride, 36);
  for (int c = 0; c < channels; c += LANES) {
    int n = channels - c < LANES ? channels - c : LANES;
    Lanes x[36], t[36], y[36];
    load_lanes(x, d, 36, c, n);
    for (int j = 0; j < 6; j++) f4_input_1d(t + j, 6, x + j, 6);
    for (int i = 0; i < 6; i++) f4_input_1d(y + 6 * i, 1, t + 6 * i, 1);
    store_lanes(rows, y, 36, c, n);
  }
}

// The 4x4 outputs of one tile, Aᵀ m A, into o[0..15] (row-major); plus bias[channel] where
// `bias` is given, then max(·, 0) where `relu` (the inference forward pass's addBias and ReLU,
// the same operations on each output while it is in registers).
static void f4_output_tile(float *const *o, const float *restrict m, size_t stride, int channels, const float *bias, int relu) {
  float *rows[36];
  strided_rows(rows, (float *)m, stride, 36);
  for (int c = 0; c < channels; c += LANES) {
    int n = channels - c < LANES ? channels - c : LANES;
    Lanes x[36], t[24], y[16];
    load_lanes(x, (const float *const *)rows, 36, c, n);
    for (int j = 0; j < 6; j++) f4_output_1d(t + j, 6, x + j, 6);
    for (int i = 0; i < 4; i++) f4_output_1d(y + 4 * i, 1, t + 6 * i, 1);
    if (bias) {
      Lanes b = {0};
      memcpy(b, bias + c, sizeof(float) * n);
      for (int p = 0; p < 16; p++)
        for (int l = 0; l < LANES; l++) y[p][l] += b[l];
    }
    if (relu)
      for (int p = 0; p < 16; p++)
        for (int l = 0; l < LANES; l++) y[p][l] = y[p][l] > 0 ? y[p][l] : 0;
    store_lanes(o, y, 16, c, n);
  }
}

// dM[ξ][tile][·] = A dy Aᵀ for the tile's 4x4 output gradients dy[0..15] (row-major).
static void f4_output_gradient_tile(float *restrict dm, size_t stride, const float *const *dy, int channels) {
  float *rows[36];
  strided_rows(rows, dm, stride, 36);
  for (int c = 0; c < channels; c += LANES) {
    int n = channels - c < LANES ? channels - c : LANES;
    Lanes x[16], t[24], y[36];
    load_lanes(x, dy, 16, c, n);
    for (int j = 0; j < 4; j++) f4_output_gradient_1d(t + j, 4, x + j, 4);
    for (int i = 0; i < 6; i++) f4_output_gradient_1d(y + 6 * i, 1, t + 4 * i, 1);
    store_lanes(rows, y, 36, c, n);
  }
}

// y = G x: 6 values from the 3 vectors x[0], x[s], x[2s] (multiplications by the reciprocals).
static inline __attribute__((always_inline)) void f4_filter_1d(Lanes *restrict y, int t, const Lanes *restrict x, int s) {
  const float sixth = 1.0f / 6.0f, twelfth = 1.0f / 12.0f, twentyfourth = 1.0f / 24.0f;
  for (int l = 0; l < LANES; l++) {
    float x0 = x[0][l], x1 = x[s][l], x2 = x[2 * s][l];
    y[0][l] = 0.25f * x0;
    y[t][l] = -sixth * (x0 + x1 + x2);
    y[2 * t][l] = -sixth * (x0 - x1 + x2);
    y[3 * t][l] = twentyfourth * x0 + twelfth * x1 + sixth * x2;
    y[4 * t][l] = twentyfourth * x0 - twelfth * x1 + sixth * x2;
    y[5 * t][l] = x2;
  }
}

// y = Gᵀ x, the adjoint of the filter transform: 3 values from the 6 vectors x[0], ..., x[5s],
// Gᵀ = [¼ -⅙ -⅙ 1/24 1/24 0; 0 -⅙ ⅙ 1/12 -1/12 0; 0 -⅙ -⅙ ⅙ ⅙ 1].
static inline __attribute__((always_inline)) void f4_filter_gradient_1d(Lanes *restrict y, int t, const Lanes *restrict x, int s) {
  const float sixth = 1.0f / 6.0f, twelfth = 1.0f / 12.0f, twentyfourth = 1.0f / 24.0f;
  for (int l = 0; l < LANES; l++) {
    float x0 = x[0][l], x1 = x[s][l], x2 = x[2 * s][l], x3 = x[3 * s][l], x4 = x[4 * s][l], x5 = x[5 * s][l];
    y[0][l] = 0.25f * x0 - sixth * (x1 + x2) + twentyfourth * (x3 + x4);
    y[t][l] = sixth * (x2 - x1) + twelfth * (x3 - x4);
    y[2 * t][l] = sixth * (x3 + x4 - x1 - x2) + x5;
  }
}

// U = G g Gᵀ for the filters (a, b) of rows a in [begin, end) of weight [3][3][in][out], LANES
// filters b at a time.
static void f4_transform_filters(float *u, const float *weight, int in, int out, int begin, int end) {
  size_t plane = (size_t)in * out;
  for (int a = begin; a < end; a++)
    for (int b = 0; b < out; b += LANES) {
      int n = out - b < LANES ? out - b : LANES;
      Lanes g[9] = {{0}}, t[18], y[36];
      for (int tap = 0; tap < 9; tap++) memcpy(g[tap], weight + (size_t)tap * plane + (size_t)a * out + b, sizeof(float) * n);
      for (int x = 0; x < 3; x++) f4_filter_1d(t + x, 3, g + x, 3);
      for (int i = 0; i < 6; i++) f4_filter_1d(y + 6 * i, 1, t + 3 * i, 1);
      for (int p = 0; p < 36; p++) memcpy(u + p * plane + (size_t)a * out + b, y[p], sizeof(float) * n);
    }
}

// weight[tap][a][b] += (Gᵀ dU G) for the elements [begin, end) of the [in, out] planes of
// dU [36, in, out], LANES at a time (begin a multiple of LANES).
static void f4_filter_gradient(float *weight, const float *du, size_t plane, size_t begin, size_t end) {
  for (size_t i = begin; i < end; i += LANES) {
    int n = end - i < LANES ? (int)(end - i) : LANES;
    Lanes x[36] = {{0}}, t[18], y[9];
    for (int p = 0; p < 36; p++) memcpy(x[p], du + p * plane + i, sizeof(float) * n);
    for (int j = 0; j < 6; j++) f4_filter_gradient_1d(t + j, 6, x + j, 6);
    for (int r = 0; r < 3; r++) f4_filter_gradient_1d(y + 3 * r, 1, t + 6 * r, 1);
    for (int tap = 0; tap < 9; tap++)
      for (int l = 0; l < n; l++) weight[tap * plane + i + l] += y[tap][l];
  }
}

// ---- The tiles of a convolution ----

// Tiles per chunk of images, so that a chunk's V and M stay in the core's cache (measured on the
// reference CNN's training step, 2 threads: 32-64 tiles alike, 128 5% slower, 256 18% slower).
#define WINOGRAD_CHUNK_TILES 64
#define TILE 4       // outputs per tile side
#define WINDOW 6     // inputs per window side
#define POSITIONS 36 // WINDOW²

// The address of pixel (y, x) of an image [height, width, channels], or `outside` beyond its
// edge: zeros for the padding read around the input, a discard row for a tile's outputs past an
// odd edge (the caller's pointer type decides which; the helper only reads the address).
static const float *pixel_or(const float *image, int y, int x, int height, int width, int channels, const float *outside) {
  return y >= 0 && y < height && x >= 0 && x < width ? image + ((size_t)y * width + x) * channels : outside;
}

// V [tiles, 36, channels] for tiles [begin, end) of the images from `first` on (tiles counted
// across the images, row by row), tile by tile; V's first row is tile `begin`'s.
static void winograd_input_tiles(float *v, const float *first, size_t begin, size_t end, int height, int width, int channels, const float *zeros) {
  int tiles_y = (height + TILE - 1) / TILE, tiles_x = (width + TILE - 1) / TILE;
  size_t per_tile = (size_t)POSITIONS * channels, per_image = (size_t)tiles_y * tiles_x;
  for (size_t tile = begin; tile < end; tile++) {
    const float *image = first + (tile / per_image) * height * width * channels;
    int ty = (int)(tile % per_image) / tiles_x, tx = (int)(tile % per_image) % tiles_x;
    const float *d[POSITIONS];
    for (int y = 0; y < WINDOW; y++)
      for (int x = 0; x < WINDOW; x++) d[WINDOW * y + x] = pixel_or(image, TILE * ty - 1 + y, TILE * tx - 1 + x, height, width, channels, zeros);
    f4_input_tile(v + (tile - begin) * per_tile, channels, d, channels);
  }
}

// V [tiles, 36, channels] for the tiles of `images` images from `first` on, tile by tile.
static void winograd_inputs(float *v, const float *first, int images, int height, int width, int channels, const float *zeros) {
  size_t per_image = (size_t)((height + TILE - 1) / TILE) * ((width + TILE - 1) / TILE);
  winograd_input_tiles(v, first, 0, (size_t)images * per_image, height, width, channels, zeros);
}

// The 16 pixels of tile (ty, tx) of an image [height, width, channels] into p[0..15] (row-major),
// `outside` for those beyond its edge.
static void tile_pixels(const float **p, const float *image, int ty, int tx, int height, int width, int channels, const float *outside) {
  for (int y = 0; y < TILE; y++)
    for (int x = 0; x < TILE; x++) p[TILE * y + x] = pixel_or(image, TILE * ty + y, TILE * tx + x, height, width, channels, outside);
}

typedef struct {
  int batch, height, width, in, out;
  float *dst;         // forward: [batch, height, width, out], overwritten; weight gradient: dU [parts, 36, in, out]
  const float *src;   // [batch, height, width, in]
  const float *dout;  // weight gradient: [batch, height, width, out]
  const float *u;     // forward: [36, in, out]
  const float *zeros; // max(in, out) zeros: the padding around the image
  const float *bias;  // forward: added to each output where given
  int relu;           // forward: max(·, 0) after the bias
  int failed;
} Winograd;

// Images [begin, end) of a part, in chunks of `chunk` images, and the part's buffer of
// `floats_per_position` floats per position of each tile of a chunk, plus `extra` floats.
typedef struct {
  int begin, end, chunk, tiles_y, tiles_x, per_image;
  float *buffer;
} WinogradPart;

static int winograd_part_setup(Winograd *t, int part, int parts, size_t floats_per_position, size_t extra, WinogradPart *w) {
  w->tiles_y = (t->height + TILE - 1) / TILE;
  w->tiles_x = (t->width + TILE - 1) / TILE;
  w->per_image = w->tiles_y * w->tiles_x;
  w->chunk = (WINOGRAD_CHUNK_TILES + w->per_image - 1) / w->per_image;
  split_range(t->batch, part, parts, &w->begin, &w->end);
  if (w->chunk > w->end - w->begin) w->chunk = w->end - w->begin;
  if (w->chunk <= 0) return 0;
  w->buffer = column_buffer(part, POSITIONS * floats_per_position * w->chunk * w->per_image + extra);
  if (!w->buffer) t->failed = 1;
  return w->buffer != NULL;
}

// Forward, images [begin, end): transform a chunk's input tiles, 36 products, transform back.
static void winograd_forward_part(void *context, int part, int parts) {
  Winograd *t = context;
  WinogradPart w;
  // V [tiles, 36, in], M [tiles, 36, out] (each tile's transform in one place; the products
  // read and write them with a stride), then one output row where outputs beyond the image go.
  if (!winograd_part_setup(t, part, parts, (size_t)(t->in + t->out), t->out, &w)) return;
  size_t most = (size_t)w.chunk * w.per_image;
  float *v = w.buffer, *m = v + POSITIONS * most * t->in, *discard = m + POSITIONS * most * t->out;
  size_t image_in = (size_t)t->height * t->width * t->in, image_out = (size_t)t->height * t->width * t->out;
  for (int b0 = w.begin; b0 < w.end; b0 += w.chunk) {
    int images = w.end - b0 < w.chunk ? w.end - b0 : w.chunk;
    size_t tiles = (size_t)images * w.per_image, tile = 0;
    winograd_inputs(v, t->src + b0 * image_in, images, t->height, t->width, t->in, t->zeros);
    for (int xi = 0; xi < POSITIONS; xi++)
      sgemm(0, 0, (int)tiles, t->out, t->in, v + xi * t->in, POSITIONS * t->in, t->u + (size_t)xi * t->in * t->out, t->out, 0, m + xi * t->out, POSITIONS * t->out);
    for (int i = 0; i < images; i++) {
      float *image = t->dst + (b0 + i) * image_out;
      for (int ty = 0; ty < w.tiles_y; ty++)
        for (int tx = 0; tx < w.tiles_x; tx++, tile++) {
          float *o[TILE * TILE];
          tile_pixels((const float **)o, image, ty, tx, t->height, t->width, t->out, discard);
          f4_output_tile(o, m + tile * POSITIONS * t->out, t->out, t->out, t->bias, t->relu);
        }
    }
  }
}

// ---- Fewer images than threads (one image to classify): split by tiles, then by channels ----
//
// Split by images, one image would run on one thread. Here the parts first transform the input
// tiles of all the images together, each part a range of tiles, into one V; then each part
// multiplies and transforms back a range of the output channels, whole vectors of LANES, for
// every tile. Every output is the same chain of operations as when split by images (sgemm's
// elements do not depend on the product's shape), so the results are the same to the bit.
typedef struct {
  Winograd *t;
  float *v, *m, *discard;
  size_t tiles;
} ByChannels;

static void input_tiles_part(void *context, int part, int parts) {
  ByChannels *c = context;
  const Winograd *t = c->t;
  int begin, end;
  split_range((int)c->tiles, part, parts, &begin, &end);
  winograd_input_tiles(c->v + (size_t)begin * POSITIONS * t->in, t->src, begin, end, t->height, t->width, t->in, t->zeros);
}

static void output_channels_part(void *context, int part, int parts) {
  ByChannels *c = context;
  const Winograd *t = c->t;
  int vectors = (t->out + LANES - 1) / LANES, begin, end;
  split_range(vectors, part, parts, &begin, &end);
  int first = begin * LANES, count = (end * LANES < t->out ? end * LANES : t->out) - first;
  if (count <= 0) return;
  for (int xi = 0; xi < POSITIONS; xi++)
    sgemm(0, 0, (int)c->tiles, count, t->in, c->v + xi * t->in, POSITIONS * t->in, t->u + (size_t)xi * t->in * t->out + first, t->out, 0,
          c->m + xi * t->out + first, POSITIONS * t->out);
  int tiles_y = (t->height + TILE - 1) / TILE, tiles_x = (t->width + TILE - 1) / TILE;
  size_t image_out = (size_t)t->height * t->width * t->out, tile = 0;
  for (int i = 0; i < t->batch; i++)
    for (int ty = 0; ty < tiles_y; ty++)
      for (int tx = 0; tx < tiles_x; tx++, tile++) {
        float *o[TILE * TILE];
        tile_pixels((const float **)o, t->dst + i * image_out, ty, tx, t->height, t->width, t->out, c->discard);
        for (int p = 0; p < TILE * TILE; p++) o[p] += first;
        f4_output_tile(o, c->m + tile * POSITIONS * t->out + first, t->out, count, t->bias ? t->bias + first : NULL, t->relu);
      }
}

// The forward pass split by tiles and channels; 0 when out of memory.
static int winograd_forward_by_channels(Winograd *t, int parts) {
  size_t tiles = (size_t)t->batch * ((t->height + TILE - 1) / TILE) * ((t->width + TILE - 1) / TILE);
  float *buffer = column_buffer(0, POSITIONS * tiles * (t->in + t->out) + t->out);
  if (!buffer) return 0;
  ByChannels c = {t, buffer, buffer + POSITIONS * tiles * t->in, buffer + POSITIONS * tiles * (t->in + t->out), tiles};
  parallel(input_tiles_part, &c, parts < (int)tiles ? parts : (int)tiles);
  parallel(output_channels_part, &c, parts);
  return 1;
}

// Weight gradient, images [begin, end): dU[ξ] += V[ξ]ᵀ · dM[ξ] over a chunk's tiles, into this
// part's own dU (summed in a fixed order after the join, so that runs repeat exactly).
static void winograd_weight_part(void *context, int part, int parts) {
  Winograd *t = context;
  size_t plane = (size_t)POSITIONS * t->in * t->out;
  float *du = t->dst + (size_t)part * plane;
  WinogradPart w;
  // V [tiles, 36, in], dM [tiles, 36, out]; the first chunk's products overwrite dU.
  if (!winograd_part_setup(t, part, parts, (size_t)(t->in + t->out), 0, &w)) {
    memset(du, 0, sizeof(float) * plane);
    return;
  }
  size_t most = (size_t)w.chunk * w.per_image;
  float *v = w.buffer, *dm = v + POSITIONS * most * t->in;
  size_t image_in = (size_t)t->height * t->width * t->in, image_out = (size_t)t->height * t->width * t->out;
  for (int b0 = w.begin; b0 < w.end; b0 += w.chunk) {
    int images = w.end - b0 < w.chunk ? w.end - b0 : w.chunk;
    size_t tiles = (size_t)images * w.per_image, tile = 0;
    winograd_inputs(v, t->src + b0 * image_in, images, t->height, t->width, t->in, t->zeros);
    for (int i = 0; i < images; i++) {
      const float *image = t->dout + (b0 + i) * image_out;
      for (int ty = 0; ty < w.tiles_y; ty++)
        for (int tx = 0; tx < w.tiles_x; tx++, tile++) {
          const float *dy[TILE * TILE];
          tile_pixels(dy, image, ty, tx, t->height, t->width, t->out, t->zeros);
          f4_output_gradient_tile(dm + tile * POSITIONS * t->out, t->out, dy, t->out);
        }
    }
    for (int xi = 0; xi < POSITIONS; xi++)
      sgemm(1, 0, t->in, t->out, (int)tiles, v + xi * t->in, POSITIONS * t->in, dm + xi * t->out, POSITIONS * t->out, b0 != w.begin, du + (size_t)xi * t->in * t->out, t->out);
  }
}

// The filters' transforms, split over the team by rows (forward) or by runs of LANES elements
// (the weight gradient's adjoint): serial, they left the other threads waiting.
typedef struct {
  float *dst;
  const float *src;
  int in, out;
} FilterTask;

static void transform_filters_part(void *context, int part, int parts) {
  FilterTask *t = context;
  int begin, end;
  split_range(t->in, part, parts, &begin, &end);
  f4_transform_filters(t->dst, t->src, t->in, t->out, begin, end);
}

static void filter_gradient_part(void *context, int part, int parts) {
  FilterTask *t = context;
  size_t plane = (size_t)t->in * t->out;
  int runs = (int)((plane + LANES - 1) / LANES), begin, end;
  split_range(runs, part, parts, &begin, &end);
  size_t last = (size_t)end * LANES < plane ? (size_t)end * LANES : plane;
  f4_filter_gradient(t->dst, t->src, plane, (size_t)begin * LANES, last);
}

// flipped[tap][a][b] = weight[8 - tap][b][a] for a weight [3][3][out][in]: the filters of the
// input gradient (turned 180 degrees, in and out exchanged) in the forward pass's layout.
static void flip_filters(float *flipped, const float *weight, int in, int out) {
  size_t plane = (size_t)in * out;
  for (int tap = 0; tap < 9; tap++) {
    const float *src = weight + (size_t)(8 - tap) * plane;
    float *dst = flipped + (size_t)tap * plane;
    for (int b = 0; b < out; b++)
      for (int a = 0; a < in; a++) dst[(size_t)a * out + b] = src[(size_t)b * in + a];
  }
}

int winograd_applies(const Conv *s) {
  return s->kernel == 3 && s->channels >= WINOGRAD_MIN_CHANNELS && s->filters >= WINOGRAD_MIN_CHANNELS;
}

static float *winograd_filters = NULL, *winograd_zeros = NULL, *winograd_flipped = NULL;
static size_t winograd_filters_floats = 0, winograd_zeros_floats = 0, winograd_flipped_floats = 0;

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

// dst = the convolution of src ([batch, height, width, in]) by the transformed filters U [36,
// in, out]: split by images, or by tiles and channels where there are fewer images than threads.
static int winograd_apply(float *dst, const float *src, const float *u, const Conv *s, int in, int out, const float *bias, int relu) {
  Winograd t = {s->batch, s->height, s->width, in, out, dst, src, NULL, u, winograd_zeros, bias, relu, 0};
  int parts = team_size();
  if (s->batch < parts) return winograd_forward_by_channels(&t, parts);
  parallel(winograd_forward_part, &t, conv_parts(s));
  return !t.failed;
}

int winograd_convolve(float *dst, const float *src, const float *weight, const Conv *s, int flip) {
  int in = flip ? s->filters : s->channels, out = flip ? s->channels : s->filters;
  size_t plane = (size_t)in * out;
  if (!winograd_buffers((size_t)POSITIONS * plane, in)) return 0;
  if (flip) {
    if (9 * plane > winograd_flipped_floats) {
      free(winograd_flipped);
      winograd_flipped = malloc(sizeof(float) * 9 * plane);
      winograd_flipped_floats = winograd_flipped ? 9 * plane : 0;
      if (!winograd_flipped) return 0;
    }
    flip_filters(winograd_flipped, weight, in, out);
    weight = winograd_flipped;
  }
  FilterTask filters = {winograd_filters, weight, in, out};
  parallel(transform_filters_part, &filters, parts_for(36.0 * plane, 16384));
  return winograd_apply(dst, src, winograd_filters, s, in, out, NULL, 0);
}

// The weight, then (where winograd_applies) U = G g Gᵀ: computed once for a model that
// classifies, where the forward pass would transform the filters again on every call (at one
// image most of the work of the last layers).
void fm_conv2d_prepare(float *prepared, const float *weight, int32_t in_channels, int32_t out_channels, int32_t kernel_size) {
  size_t plane = (size_t)in_channels * out_channels;
  memcpy(prepared, weight, sizeof(float) * kernel_size * kernel_size * plane);
  Conv s = {1, 1, 1, in_channels, out_channels, kernel_size};
  if (!winograd_applies(&s)) return;
  FilterTask filters = {prepared + 9 * plane, weight, in_channels, out_channels};
  parallel(transform_filters_part, &filters, parts_for(36.0 * plane, 16384));
}

int winograd_convolve_prepared(float *dst, const float *src, const float *u, const Conv *s, const float *bias, int relu) {
  if (!winograd_buffers(0, s->channels)) return 0;
  return winograd_apply(dst, src, u, s, s->channels, s->filters, bias, relu);
}

int winograd_weight_gradient(float *dweight, const float *inp, const float *dout, const Conv *s) {
  int parts = conv_parts(s);
  size_t plane = (size_t)POSITIONS * s->channels * s->filters;
  size_t zeros = s->channels > s->filters ? s->channels : s->filters;
  if (!winograd_buffers(parts * plane, zeros)) return 0;
  Winograd t = {s->batch, s->height, s->width, s->channels, s->filters, winograd_filters, inp, dout, NULL, winograd_zeros, NULL, 0, 0};
  parallel(winograd_weight_part, &t, parts);
  if (t.failed) return 0;
  add_partial_sums(winograd_filters, winograd_filters + plane, parts - 1, plane);
  FilterTask gradient = {dweight, winograd_filters, s->channels, s->filters};
  parallel(filter_gradient_part, &gradient, parts_for(plane, 16384));
  return 1;
}
