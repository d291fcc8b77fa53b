// The hardware's limit for the benchmarks: single-precision fused multiply-adds per second on
// `threads` threads, each running 12 independent chains of the widest FMA the compiler targets
// (-march=native), so the latency of one never stalls the next. Built and run by bench/run.ts.
// Prints one JSON line: {"threads": T, "gflops": ...} (2 flops per multiply-add).
#include <immintrin.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#if defined(__AVX512F__)
typedef __m512 vec;
#define LANES 16
#define FMA(a, b, c) _mm512_fmadd_ps(a, b, c)
#define SET1(x) _mm512_set1_ps(x)
#define SUM(v) _mm512_reduce_add_ps(v)
#elif defined(__FMA__)
typedef __m256 vec;
#define LANES 8
#define FMA(a, b, c) _mm256_fmadd_ps(a, b, c)
#define SET1(x) _mm256_set1_ps(x)
static float SUM(__m256 v) {
  float lanes[8];
  _mm256_storeu_ps(lanes, v);
  float s = 0;
  for (int i = 0; i < 8; i++) s += lanes[i];
  return s;
}
#else
#error "no FMA instructions on this target"
#endif

#define CHAINS 12
static const long ITERATIONS = 200000000 / LANES;

static void *run(void *result) {
  vec acc[CHAINS];
  for (int c = 0; c < CHAINS; c++) acc[c] = SET1(c * 1e-3f);
  const vec a = SET1(0.999999f), b = SET1(1e-7f);
  for (long i = 0; i < ITERATIONS; i++) {
    for (int c = 0; c < CHAINS; c++) acc[c] = FMA(acc[c], a, b);
  }
  float s = 0;
  for (int c = 0; c < CHAINS; c++) s += SUM(acc[c]);
  *(float *)result = s;  // keeps the loop from being optimised away
  return NULL;
}

int main(int argc, char **argv) {
  int threads = argc > 1 ? atoi(argv[1]) : 1;
  pthread_t ids[64];
  float sink[64];
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (int t = 0; t < threads; t++) pthread_create(&ids[t], NULL, run, &sink[t]);
  for (int t = 0; t < threads; t++) pthread_join(ids[t], NULL);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double seconds = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
  double flops = 2.0 * CHAINS * LANES * (double)ITERATIONS * threads;
  printf("{\"threads\": %d, \"gflops\": %.1f, \"lanes\": %d, \"check\": %g}\n", threads, flops / seconds / 1e9, LANES, (double)sink[0]);
  return 0;
}
