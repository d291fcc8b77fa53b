// Flushing subnormal numbers: the state that training carries from step to step (weights, the
// optimisers' moments and velocity, the moving average of the weights) is stored as +0 where it
// would be subnormal, as in every backend (src/kernels/spec.ts, sgdStep, says why).
#ifndef FMNIST_SUBNORMAL_H
#define FMNIST_SUBNORMAL_H

#include <float.h>
#include <math.h>

// +0 for a subnormal x (0 < |x| < FLT_MIN, 2^-126); x itself otherwise (NaN and infinities too).
static inline float flush_subnormal(float x) { return fabsf(x) < FLT_MIN ? 0.0f : x; }

#endif
