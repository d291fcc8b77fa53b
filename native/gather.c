// gatherPixels: a batch of images as floats in [0, 1], from a dataset's bytes.
#include "kernels.h"
#include "team.h"

typedef struct {
  float *out;
  const uint8_t *pixels;
  const int32_t *rows;
  int count, row_length;
  int upcoming;  // rows after these in the index list: the next batch, probably
} GatherArgs;

// Part `part` converts columns split_range(row_length) of every row: the columns of the batch
// that the same thread's part of the products that follow reads (a deep product split by k,
// the weight gradient split by rows of xᵀ), so they land in that thread's cache.
static void gather_part(void *context, int part, int parts) {
  const GatherArgs *g = context;
  int begin, end;
  split_range(g->row_length, part, parts, &begin, &end);
  for (int r = 0; r < g->count; r++) {
    float *restrict out = g->out + (size_t)r * g->row_length;
    const uint8_t *restrict in = g->pixels + (size_t)g->rows[r] * g->row_length;
    for (int j = begin; j < end; j++) out[j] = (float)in[j] / 255.0f;
  }
  // Ask for the next batch's bytes now, so they arrive during this step's products instead of
  // being waited for at the next gather (29-36 against 41-44 us a gather in training).
  for (int r = g->count; r < g->count + g->upcoming; r++) {
    const uint8_t *in = g->pixels + (size_t)g->rows[r] * g->row_length;
    for (int j = begin; j < end; j += 64) __builtin_prefetch(in + j, 0, 1);
  }
}

// A batch's rows come from all over the dataset, so reading them waits on memory: bytes are a
// quarter of the floats to wait for, two threads each wait on half of them, and the rows that
// follow in `indices` (the next batch of a training epoch) are prefetched.
void fm_gather_pixels(float *out, const uint8_t *pixels, const int32_t *indices, size_t indices_length, int32_t start, int32_t count,
                      int32_t row_length) {
  int upcoming = (int)indices_length - start - count;
  if (upcoming > count) upcoming = count;
  if (upcoming < 0) upcoming = 0;
  GatherArgs g = {out, pixels, indices + start, count, row_length, upcoming};
  parallel(gather_part, &g, parts_for((double)count * row_length, 1 << 14));
}
