// dropoutMask: dropout's mask, drawn in the kernel from a counter-based generator.
#include <string.h>

#include "kernels.h"

// Dropout's generator (see dropoutMask in src/kernels/types.ts and dropoutWord in js.ts), four
// words at a time in GCC's vector types.
typedef uint32_t u32x4 __attribute__((vector_size(16)));
typedef int32_t i32x4 __attribute__((vector_size(16)));

static inline u32x4 lowbias32x4(u32x4 x) {
  x ^= x >> 16;
  x *= 0x7feb352dU;
  x ^= x >> 15;
  x *= 0x846ca68bU;
  return x ^ (x >> 16);
}

void fm_dropout_mask(float *mask, int32_t n, int32_t threshold, float scale, uint32_t key0, uint32_t key1) {
  int32_t scale_bits;
  memcpy(&scale_bits, &scale, sizeof scale_bits);
  const i32x4 limit = {threshold, threshold, threshold, threshold};
  const i32x4 scales = {scale_bits, scale_bits, scale_bits, scale_bits};
  u32x4 counter = {0, 1, 2, 3};
  for (int b = 0; 8 * b < n; b++, counter += 4) {
    u32x4 word = lowbias32x4(lowbias32x4(counter ^ key0) + key1);
    i32x4 block[2] = {((i32x4)(word & 0xffff) < limit) & scales, ((i32x4)(word >> 16) < limit) & scales};
    // A last, partial block keeps only the elements below n.
    memcpy(mask + 8 * b, block, sizeof(float) * (n - 8 * b < 8 ? n - 8 * b : 8));
  }
}
