// What the two ways of convolving (im2col in convolution.c, Winograd in winograd.c) share: a
// convolution's geometry, each thread's buffer and the parts a convolution is split into.
#ifndef FMNIST_CONVOLUTION_H
#define FMNIST_CONVOLUTION_H

#include <stddef.h>

// Shared between the addon's files only (see team.h for why hidden).
#pragma GCC visibility push(hidden)

// NHWC, stride 1, "same" padding: [batch, height, width, channels] into [batch, height, width,
// filters] by a weight [kernel, kernel, channels, filters].
typedef struct {
  int batch, height, width, channels, filters, kernel;
} Conv;

// Part `part`'s buffer of at least `floats` floats, or NULL when out of memory.
float *column_buffer(int part, size_t floats);

// Parts for a convolution: one per thread, at most one per image.
int conv_parts(const Conv *s);

#pragma GCC visibility pop

#endif
