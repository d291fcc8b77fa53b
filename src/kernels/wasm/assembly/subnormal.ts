// Flushing subnormal numbers: the state that training carries from step to step (weights, the
// optimisers' moments and velocity, the moving average of the weights) is stored as +0 where it
// would be subnormal, as in every backend (src/kernels/spec.ts, sgdStep, says why).

/** float32's smallest normal number, 2^-126. */
const SMALLEST_NORMAL: f32 = 1.1754943508222875e-38;

/** +0 for a subnormal x; x itself otherwise (NaN and infinities too). */
@inline export function flushSubnormal(x: f32): f32 {
  return Mathf.abs(x) < SMALLEST_NORMAL ? 0 : x;
}

/** flushSubnormal on each lane: the lanes whose magnitude is under the smallest normal number are cleared to +0. */
@inline export function flushSubnormal4(x: v128): v128 {
  return v128.andnot(x, f32x4.lt(f32x4.abs(x), f32x4.splat(SMALLEST_NORMAL)));
}
