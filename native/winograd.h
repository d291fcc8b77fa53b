// The 3x3 convolutions by Winograd F(4x4, 3x3) (winograd.c), which convolution.c chooses where
// winograd_applies.
#ifndef FMNIST_WINOGRAD_H
#define FMNIST_WINOGRAD_H

#include "convolution.h"

// Shared between the addon's files only (see team.h for why hidden).
#pragma GCC visibility push(hidden)

// Whether the convolution is one that Winograd does faster: 3x3, enough channels in and out.
int winograd_applies(const Conv *s);

// dst = the 3x3 convolution of src by Winograd F(4x4, 3x3); `flip` = the input gradient (src is
// the output gradient, dst the input gradient). Returns 0 when out of memory.
int winograd_convolve(float *dst, const float *src, const float *weight, const Conv *s, int flip);

// dst = the 3x3 convolution of src by the filters as fm_conv2d_prepare transformed them (u: U
// [36, channels, filters]), plus bias (where not NULL), then max(·, 0) where `relu`. Returns 0
// when out of memory.
int winograd_convolve_prepared(float *dst, const float *src, const float *u, const Conv *s, const float *bias, int relu);

// dweight += the weight gradient by Winograd F(4x4, 3x3). Returns 0 when out of memory.
int winograd_weight_gradient(float *dweight, const float *inp, const float *dout, const Conv *s);

#pragma GCC visibility pop

#endif
