// The native backend: the kernel interface (src/kernels/types.ts) in C over OpenBLAS, as a
// Node-API addon. Every array argument is a typed array whose memory is used in place (no
// copies between JavaScript and C).
//
// Threads: OpenBLAS runs single-threaded, and the addon splits the work itself over a small
// team of threads (the calling thread and `threads - 1` workers): matrix products by rows of
// the result, convolutions by images (im2col + sgemm per chunk of images, on each thread's own
// column buffer), the weight gradient into per-thread sums. Splitting the batch keeps im2col
// and col2im parallel too; OpenBLAS's own threads left them serial, and split the thin
// convolution products poorly (2 threads were no faster than 1). Letting OpenMP parallelise
// the loops beside OpenBLAS's threads was worse still: their idle threads spun against each
// other on a 2-vCPU machine. The team's idle workers spin only briefly, then sleep.
#include <cblas.h>
#include <math.h>
#include <node_api.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define CPU_RELAX() _mm_pause()
#else
#define CPU_RELAX() ((void)0)
#endif

// OpenBLAS's own controls (declared in its cblas.h, repeated for builds whose header lacks them).
extern void openblas_set_num_threads(int);
extern int openblas_get_num_threads(void);
extern char *openblas_get_corename(void);

#define MAX_ARGS 13

typedef struct {
  napi_env env;
  napi_value argv[MAX_ARGS];
  size_t argc;
  int failed;
} Args;

static void args_init(Args *args, napi_env env, napi_callback_info info) {
  args->env = env;
  args->argc = MAX_ARGS;
  args->failed = 0;
  napi_get_cb_info(env, info, &args->argc, args->argv, NULL, NULL);
}

// Argument i's data, checked to be a typed array of type `want`; its element count goes to
// *length where that is not NULL.
static void *typed(Args *args, size_t i, napi_typedarray_type want, size_t *length) {
  if (args->failed) return NULL;
  bool is_typed = false;
  if (i >= args->argc || napi_is_typedarray(args->env, args->argv[i], &is_typed) != napi_ok || !is_typed) {
    napi_throw_type_error(args->env, NULL, "fmnist native: expected a typed array argument");
    args->failed = 1;
    return NULL;
  }
  napi_typedarray_type type;
  void *data;
  napi_get_typedarray_info(args->env, args->argv[i], &type, length, &data, NULL, NULL);
  if (type != want) {
    napi_throw_type_error(args->env, NULL, "fmnist native: typed array of the wrong element type");
    args->failed = 1;
    return NULL;
  }
  return data;
}

static float *f32(Args *args, size_t i) { return (float *)typed(args, i, napi_float32_array, NULL); }
static uint8_t *u8(Args *args, size_t i) { return (uint8_t *)typed(args, i, napi_uint8_array, NULL); }
static int32_t *i32(Args *args, size_t i, size_t *length) { return (int32_t *)typed(args, i, napi_int32_array, length); }

static double num(Args *args, size_t i) {
  double value = 0;
  if (!args->failed && (i >= args->argc || napi_get_value_double(args->env, args->argv[i], &value) != napi_ok)) {
    napi_throw_type_error(args->env, NULL, "fmnist native: expected a number argument");
    args->failed = 1;
  }
  return value;
}

static int integer(Args *args, size_t i) { return (int)num(args, i); }


// ---- The thread team: fork-join over `parts` parts, part 0 on the calling thread ----

#define MAX_THREADS 64
// Spins of an idle worker before it sleeps: long enough to catch the next kernel of the same
// layer, short enough not to steal the other core from JavaScript for long.
#define SPIN_LIMIT 20000

typedef void (*Task)(void *context, int part, int parts);

static struct {
  int size;  // threads in the team, the caller included
  pthread_t workers[MAX_THREADS];
  pthread_mutex_t lock;
  pthread_cond_t wake, finished;
  atomic_uint generation;  // bumped for each task; workers wait for it to change
  atomic_int pending;      // workers still running the current task
  Task task;
  void *context;
  int parts;
  int stopping;
  // The generation when the workers were started: what a new worker has "seen". A worker that
  // read team.generation itself once running could miss a task handed out before that.
  unsigned started_at;
} team = {1, {0}, PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, NULL, NULL, 0, 0, 0};

static void *team_worker(void *arg) {
  int id = (int)(intptr_t)arg;
  unsigned seen = team.started_at;
  for (;;) {
    int spins = 0;
    while (atomic_load_explicit(&team.generation, memory_order_acquire) == seen && spins < SPIN_LIMIT) {
      CPU_RELAX();
      spins++;
    }
    pthread_mutex_lock(&team.lock);
    while (atomic_load(&team.generation) == seen && !team.stopping) pthread_cond_wait(&team.wake, &team.lock);
    pthread_mutex_unlock(&team.lock);
    if (team.stopping) return NULL;
    seen = atomic_load(&team.generation);
    if (id < team.parts) team.task(team.context, id, team.parts);
    if (atomic_fetch_sub(&team.pending, 1) == 1) {
      pthread_mutex_lock(&team.lock);
      pthread_cond_signal(&team.finished);
      pthread_mutex_unlock(&team.lock);
    }
  }
}

static void team_stop(void) {
  if (team.size <= 1) return;
  pthread_mutex_lock(&team.lock);
  team.stopping = 1;
  pthread_cond_broadcast(&team.wake);
  pthread_mutex_unlock(&team.lock);
  for (int i = 1; i < team.size; i++) pthread_join(team.workers[i], NULL);
  team.stopping = 0;
  team.size = 1;
}

static int team_start(int size) {
  team_stop();
  if (size > MAX_THREADS) size = MAX_THREADS;
  team.started_at = atomic_load(&team.generation);
  for (int i = 1; i < size; i++) {
    if (pthread_create(&team.workers[i], NULL, team_worker, (void *)(intptr_t)i) != 0) {
      team.size = i;
      return 0;
    }
    team.size = i + 1;
  }
  return 1;
}

// Runs task(context, p, parts) for p = 0 .. parts-1 (parts <= team size), p = 0 here.
static void parallel(Task task, void *context, int parts) {
  if (parts > team.size) parts = team.size;
  if (parts <= 1) {
    task(context, 0, 1);
    return;
  }
  team.task = task;
  team.context = context;
  team.parts = parts;
  atomic_store(&team.pending, team.size - 1);
  pthread_mutex_lock(&team.lock);
  atomic_fetch_add_explicit(&team.generation, 1, memory_order_release);
  pthread_cond_broadcast(&team.wake);
  pthread_mutex_unlock(&team.lock);
  task(context, 0, parts);
  // Wait for the workers: spin first (they usually finish together), then sleep.
  for (int spins = 0; atomic_load_explicit(&team.pending, memory_order_acquire) > 0 && spins < SPIN_LIMIT; spins++) CPU_RELAX();
  pthread_mutex_lock(&team.lock);
  while (atomic_load(&team.pending) > 0) pthread_cond_wait(&team.finished, &team.lock);
  pthread_mutex_unlock(&team.lock);
}

// The range [*begin, *end) of part `part` when `count` items are split into `parts` near-equal parts.
static void split_range(int count, int part, int parts, int *begin, int *end) {
  *begin = (int)((long long)count * part / parts);
  *end = (int)((long long)count * (part + 1) / parts);
}

// Parts worth using for `work` multiply-adds (or element operations): a part below about
// 20 microseconds of work costs more to hand over than it saves.
static int parts_for(double work, double minimum_per_part) {
  int parts = (int)(work / minimum_per_part);
  if (parts < 1) parts = 1;
  return parts < team.size ? parts : team.size;
}

static napi_value undefined(napi_env env) {
  napi_value value;
  napi_get_undefined(env, &value);
  return value;
}

// A loop over [0, count) split into near-equal ranges over the team: body(args, begin, end).
typedef void (*RangeBody)(void *args, int begin, int end);
typedef struct {
  RangeBody body;
  void *args;
  int count;
} RangeTask;

static void range_part(void *context, int part, int parts) {
  RangeTask *t = context;
  int begin, end;
  split_range(t->count, part, parts, &begin, &end);
  if (end > begin) t->body(t->args, begin, end);
}

// Splits when the loop touches at least 64K floats per part (smaller loops are faster alone).
static void parallel_range(RangeBody body, void *args, int count, double floats_per_item) {
  RangeTask t = {body, args, count};
  parallel(range_part, &t, parts_for(count * floats_per_item, 1 << 16));
}

typedef struct {
  float *c;
  const float *a, *b;
  int m, k, n, trans_a, trans_b, accumulate;
} Gemm;

// Part `part` of C: rows [begin, end) when C has at least as many rows as columns (the same
// rows of op(A), which start `begin` rows down A, or for Aᵀ `begin` columns across A, whose
// leading dimension stays m); otherwise columns [begin, end) (the same columns of op(B)), so
// that each thread packs only its share of B (the MLP's 64-row batches against 784x128 weights).
static void gemm_part(void *context, int part, int parts) {
  const Gemm *g = context;
  int by_rows = g->m >= g->n, begin, end;
  split_range(by_rows ? g->m : g->n, part, parts, &begin, &end);
  if (end <= begin) return;
  int m = by_rows ? end - begin : g->m, n = by_rows ? g->n : end - begin;
  const float *a = !by_rows ? g->a : g->trans_a ? g->a + begin : g->a + (size_t)begin * g->k;
  const float *b = by_rows ? g->b : g->trans_b ? g->b + (size_t)begin * g->k : g->b + begin;
  float *c = by_rows ? g->c + (size_t)begin * g->n : g->c + begin;
  cblas_sgemm(CblasRowMajor, g->trans_a ? CblasTrans : CblasNoTrans, g->trans_b ? CblasTrans : CblasNoTrans, m, n, g->k, 1.0f, a,
              g->trans_a ? g->m : g->k, b, g->trans_b ? g->k : g->n, g->accumulate ? 1.0f : 0.0f, c, g->n);
}

// The partial sums of parts 1 .. parts-1 of a split whose part 0 sums into the result itself,
// one after another; grown by reserve_partials, which returns 0 when out of memory.
static float *partials = NULL;
static size_t partials_floats = 0;

static int reserve_partials(int parts, size_t size) {
  size_t floats = (size_t)(parts - 1) * size;
  if (floats > partials_floats) {
    free(partials);
    partials = malloc(sizeof(float) * floats);
    partials_floats = partials ? floats : 0;
    if (!partials) return 0;
  }
  return 1;
}

// dst[0..size) += each of `count` partial sums placed `size` floats apart from `sums`, in order,
// so that a run repeats exactly for a given thread count.
static void add_partial_sums(float *restrict dst, const float *restrict sums, int count, size_t size) {
  for (int p = 0; p < count; p++)
    for (size_t i = 0; i < size; i++) dst[i] += sums[(size_t)p * size + i];
}

// A product split by k: part p computes op(A)[:, k range] · op(B)[k range, :], part 0 into C
// itself, the others into partial sums, which are then added to C in part order (so a run
// repeats exactly). Chosen for thin, deep products (the MLP's 64 x 784 x 128 forward pass):
// each thread then reads only its rows of the weights, the rows that its part of the weight
// gradient wrote and its part of the optimiser step updated, so they stay in that core's
// cache, where a split by columns of C made each core fetch half its weights from the other's.
typedef struct {
  const Gemm *g;
  float *partials;
} DeepGemm;

static void gemm_deep_part(void *context, int part, int parts) {
  const DeepGemm *d = context;
  const Gemm *g = d->g;
  int begin, end;
  split_range(g->k, part, parts, &begin, &end);
  float *c = part == 0 ? g->c : d->partials + (size_t)(part - 1) * g->m * g->n;
  float beta = part == 0 && g->accumulate ? 1.0f : 0.0f;
  const float *a = g->trans_a ? g->a + (size_t)begin * g->m : g->a + begin;
  const float *b = g->trans_b ? g->b + begin : g->b + (size_t)begin * g->n;
  cblas_sgemm(CblasRowMajor, g->trans_a ? CblasTrans : CblasNoTrans, g->trans_b ? CblasTrans : CblasNoTrans, g->m, g->n, end - begin, 1.0f,
              a, g->trans_a ? g->m : g->k, b, g->trans_b ? g->k : g->n, beta, c, g->n);
}

// Runs the product split by k; returns 0 (having done nothing) when the partial sums cannot be had.
static int gemm_deep(const Gemm *g, int parts) {
  size_t size = (size_t)g->m * g->n;
  if (!reserve_partials(parts, size)) return 0;
  DeepGemm d = {g, partials};
  parallel(gemm_deep_part, &d, parts);
  add_partial_sums(g->c, d.partials, parts - 1, size);
  return 1;
}

// gemm(c, a, b, m, k, n, transA, transB, accumulate): C[m,n] (+)= op(A) · op(B), row-major.
static napi_value gemm(napi_env env, napi_callback_info info) {
  Args args;
  args_init(&args, env, info);
  float *c = f32(&args, 0), *a = f32(&args, 1), *b = f32(&args, 2);
  int m = integer(&args, 3), k = integer(&args, 4), n = integer(&args, 5);
  int trans_a = integer(&args, 6), trans_b = integer(&args, 7), accumulate = integer(&args, 8);
  if (args.failed) return NULL;
  if (m == 0 || n == 0) return undefined(env);
  if (k == 0) {
    if (!accumulate) memset(c, 0, sizeof(float) * (size_t)m * n);
    return undefined(env);
  }
  Gemm g = {c, a, b, m, k, n, trans_a, trans_b, accumulate};
  int parts = parts_for((double)m * n * k, 1 << 17);
  // Deep and thin (k > n > m): split by k, with at least 64 of k per part.
  if (parts > 1 && m < n && n < k && k >= 64 * parts && gemm_deep(&g, parts)) return undefined(env);
  parallel(gemm_part, &g, parts);
  return undefined(env);
}

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

// gatherPixels(out, pixels, indices, start, count, rowLength): out[b] = pixels[indices[start + b]]
// / 255. A batch's rows come from all over the dataset, so reading them waits on memory: bytes
// are a quarter of the floats to wait for, two threads each wait on half of them, and the rows
// that follow in `indices` (the next batch of a training epoch) are prefetched.
static napi_value gather_pixels(napi_env env, napi_callback_info info) {
  Args args;
  args_init(&args, env, info);
  float *out = f32(&args, 0);
  uint8_t *pixels = u8(&args, 1);
  size_t length = 0;
  int32_t *indices = i32(&args, 2, &length);
  int start = integer(&args, 3), count = integer(&args, 4), row_length = integer(&args, 5);
  if (args.failed) return NULL;
  int upcoming = (int)length - start - count;
  if (upcoming > count) upcoming = count;
  if (upcoming < 0) upcoming = 0;
  GatherArgs g = {out, pixels, indices + start, count, row_length, upcoming};
  parallel(gather_part, &g, parts_for((double)count * row_length, 1 << 14));
  return undefined(env);
}

typedef struct {
  float *out;
  const float *bias;
  int cols;
} BiasArgs;

// The arguments copied into restrict locals, so that GCC vectorizes the loop (as in Adam's).
static void add_bias_rows(void *context, int begin, int end) {
  const BiasArgs *a = context;
  const float *restrict bias = a->bias;
  int cols = a->cols;
  for (int r = begin; r < end; r++) {
    float *restrict row = a->out + (size_t)r * cols;
    for (int c = 0; c < cols; c++) row[c] += bias[c];
  }
}

static napi_value add_bias(napi_env env, napi_callback_info info) {
  Args args;
  args_init(&args, env, info);
  BiasArgs a = {f32(&args, 0), f32(&args, 1), integer(&args, 3)};
  int rows = integer(&args, 2);
  if (args.failed) return NULL;
  parallel_range(add_bias_rows, &a, rows, a.cols);
  return undefined(env);
}

static napi_value sum_rows(napi_env env, napi_callback_info info) {
  Args args;
  args_init(&args, env, info);
  float *restrict dbias = f32(&args, 0), *dout = f32(&args, 1);
  int rows = integer(&args, 2), cols = integer(&args, 3);
  if (args.failed) return NULL;
  for (int r = 0; r < rows; r++) {
    const float *restrict row = dout + (size_t)r * cols;
    for (int c = 0; c < cols; c++) dbias[c] += row[c];
  }
  return undefined(env);
}

typedef struct {
  float *out;
  const float *a, *b;
} ElementArgs;

static void relu_range(void *context, int begin, int end) {
  const ElementArgs *e = context;
  for (int i = begin; i < end; i++) e->out[i] = e->a[i] > 0 ? e->a[i] : 0;
}

static napi_value relu(napi_env env, napi_callback_info info) {
  Args args;
  args_init(&args, env, info);
  ElementArgs e = {f32(&args, 0), f32(&args, 1), NULL};
  int n = integer(&args, 2);
  if (args.failed) return NULL;
  parallel_range(relu_range, &e, n, 2);
  return undefined(env);
}

// out = dinp, a = dout, b = the forward output.
static void relu_backward_range(void *context, int begin, int end) {
  const ElementArgs *e = context;
  float *restrict out = e->out;
  const float *restrict dout = e->a, *restrict forward = e->b;
  // Both loads unconditional, so the loop vectorises (a conditional load kept it scalar, 8x slower).
  for (int i = begin; i < end; i++) {
    float gradient = dout[i];
    out[i] = forward[i] > 0 ? gradient : 0;
  }
}

static napi_value relu_backward(napi_env env, napi_callback_info info) {
  Args args;
  args_init(&args, env, info);
  ElementArgs e = {f32(&args, 0), f32(&args, 1), f32(&args, 2)};
  int n = integer(&args, 3);
  if (args.failed) return NULL;
  parallel_range(relu_backward_range, &e, n, 3);
  return undefined(env);
}

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

// dropoutMask(mask, n, threshold, scale, key0, key1).
static napi_value dropout_mask(napi_env env, napi_callback_info info) {
  Args args;
  args_init(&args, env, info);
  float *mask = f32(&args, 0);
  int n = integer(&args, 1);
  int32_t threshold = integer(&args, 2);
  float scale = (float)num(&args, 3);
  uint32_t key0 = (uint32_t)num(&args, 4), key1 = (uint32_t)num(&args, 5);
  if (args.failed) return NULL;
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
  return undefined(env);
}

// zero(out, n), on the calling thread: split over the team, the MLP's 400 KB of gradients took
// longer (14-18 against 9-11 us a step).
static napi_value zero(napi_env env, napi_callback_info info) {
  Args args;
  args_init(&args, env, info);
  float *out = f32(&args, 0);
  int n = integer(&args, 1);
  if (args.failed) return NULL;
  memset(out, 0, sizeof(float) * (size_t)n);
  return undefined(env);
}

static void multiply_range(void *context, int begin, int end) {
  const ElementArgs *e = context;
  for (int i = begin; i < end; i++) e->out[i] = e->a[i] * e->b[i];
}

static napi_value multiply(napi_env env, napi_callback_info info) {
  Args args;
  args_init(&args, env, info);
  ElementArgs e = {f32(&args, 0), f32(&args, 1), f32(&args, 2)};
  int n = integer(&args, 3);
  if (args.failed) return NULL;
  parallel_range(multiply_range, &e, n, 3);
  return undefined(env);
}

static napi_value softmax_cross_entropy(napi_env env, napi_callback_info info) {
  Args args;
  args_init(&args, env, info);
  float *probs = f32(&args, 0), *logits = f32(&args, 1);
  uint8_t *labels = u8(&args, 2);
  int rows = integer(&args, 3), cols = integer(&args, 4);
  if (args.failed) return NULL;
  double total = 0;
  for (int r = 0; r < rows; r++) {
    const float *in = logits + (size_t)r * cols;
    float *out = probs + (size_t)r * cols;
    double max = -INFINITY, sum = 0;
    for (int c = 0; c < cols; c++) max = fmax(max, (double)in[c]);
    for (int c = 0; c < cols; c++) {
      double e = exp((double)in[c] - max);
      out[c] = (float)e;
      sum += e;
    }
    for (int c = 0; c < cols; c++) out[c] = (float)((double)out[c] / sum);
    total -= (double)in[labels[r]] - max - log(sum);
  }
  napi_value result;
  napi_create_double(env, total / rows, &result);
  return result;
}

static napi_value softmax_cross_entropy_backward(napi_env env, napi_callback_info info) {
  Args args;
  args_init(&args, env, info);
  float *dlogits = f32(&args, 0), *probs = f32(&args, 1);
  uint8_t *labels = u8(&args, 2);
  int rows = integer(&args, 3), cols = integer(&args, 4);
  if (args.failed) return NULL;
  float scale = (float)(1.0 / rows);
  for (int r = 0; r < rows; r++) {
    for (int c = 0; c < cols; c++) dlogits[(size_t)r * cols + c] = probs[(size_t)r * cols + c] * scale;
    dlogits[(size_t)r * cols + labels[r]] -= scale;
  }
  return undefined(env);
}

// sgdStep(param, grad, velocity, n, lr, momentum, nesterov, decay)
static napi_value sgd_step(napi_env env, napi_callback_info info) {
  Args args;
  args_init(&args, env, info);
  float *restrict param = f32(&args, 0), *restrict grad = f32(&args, 1), *restrict velocity = f32(&args, 2);
  int n = integer(&args, 3);
  float lr = (float)num(&args, 4), momentum = (float)num(&args, 5);
  int nesterov = integer(&args, 6);
  float decay = (float)num(&args, 7);
  if (args.failed) return NULL;
  for (int i = 0; i < n; i++) {
    float g = grad[i] + decay * param[i];
    if (momentum != 0) {
      velocity[i] = momentum * velocity[i] + g;
      g = nesterov ? g + momentum * velocity[i] : velocity[i];
    }
    param[i] -= lr * g;
  }
  return undefined(env);
}

// adamStep(param, grad, m, v, n, stepSize = lr / (1 - beta1^t), beta1, beta2, epsilon, decay, correction2 = 1 - beta2^t)
typedef struct {
  float *param, *m, *v;
  const float *grad;
  float step_size, beta1, beta2, epsilon, decay, correction2;
} AdamArgs;

static void adam_range(void *context, int begin, int end) {
  const AdamArgs *a = context;
  float *restrict param = a->param, *restrict m = a->m, *restrict v = a->v;
  const float *restrict grad = a->grad;
  const float step_size = a->step_size, beta1 = a->beta1, beta2 = a->beta2, epsilon = a->epsilon, decay = a->decay, correction2 = a->correction2;
  for (int i = begin; i < end; i++) {
    float g = grad[i] + decay * param[i];
    m[i] = beta1 * m[i] + (1 - beta1) * g;
    v[i] = beta2 * v[i] + (1 - beta2) * g * g;
    param[i] -= step_size * m[i] / (sqrtf(v[i] / correction2) + epsilon);
  }
}

static napi_value adam_step(napi_env env, napi_callback_info info) {
  Args args;
  args_init(&args, env, info);
  AdamArgs a = {.param = f32(&args, 0), .grad = f32(&args, 1), .m = f32(&args, 2), .v = f32(&args, 3)};
  int n = integer(&args, 4);
  a.step_size = (float)num(&args, 5);
  a.beta1 = (float)num(&args, 6);
  a.beta2 = (float)num(&args, 7);
  a.epsilon = (float)num(&args, 8);
  a.decay = (float)num(&args, 9);
  a.correction2 = (float)num(&args, 10);
  if (args.failed) return NULL;
  parallel_range(adam_range, &a, n, 4);
  return undefined(env);
}

// ---- Convolution, NHWC, stride 1, "same" padding: im2col + sgemm over chunks of images ----

typedef struct {
  int batch, height, width, channels, filters, kernel;
} Conv;

// Each thread's column buffer, grown as needed. The addon is called from one JavaScript thread
// at a time, and part p of a task runs on one team thread, so buffer p has one user at a time.
static float *columns[MAX_THREADS];
static size_t columns_floats[MAX_THREADS];

static float *column_buffer(int part, size_t floats) {
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

static int conv_args(Args *args, size_t first, Conv *s) {
  s->batch = integer(args, first);
  s->height = integer(args, first + 1);
  s->width = integer(args, first + 2);
  s->channels = integer(args, first + 3);
  s->filters = integer(args, first + 4);
  s->kernel = integer(args, first + 5);
  return !args->failed;
}

typedef struct {
  Conv s;
  float *out;          // forward: out; backward input: dinp; backward weight: dweight
  const float *inp;    // forward, backward weight: the input images
  const float *dout;   // backward passes: the output gradient
  const float *weight; // forward, backward input
  float *partials;     // backward weight: a [taps, filters] sum per part after the first
  int failed;          // a part could not get its column buffer
} ConvTask;

// Parts for a convolution: one per thread, at most one per image.
static int conv_parts(const Conv *s) {
  return s->batch < team.size ? s->batch : team.size;
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
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, images * pixels, s->filters, taps, 1.0f, col, taps, t->weight, s->filters, 0.0f,
                t->out + (size_t)b0 * pixels * s->filters, s->filters);
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
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, images * pixels, taps, s->filters, 1.0f, t->dout + (size_t)b0 * pixels * s->filters,
                s->filters, t->weight, s->filters, 0.0f, col, taps);
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
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, taps, s->filters, images * pixels, 1.0f, col, taps,
                t->dout + (size_t)b0 * pixels * s->filters, s->filters, 1.0f, sum, s->filters);
  }
}

// ---- Winograd F(2x2, 3x3): the 3x3 convolutions with 2.25x fewer multiplications ----
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

static int winograd_applies(const Conv *s) {
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

// dst = the 3x3 convolution of src by Winograd F(2x2, 3x3); `flip` = the input gradient (src is
// the output gradient, dst the input gradient). Returns 0 when out of memory.
static int winograd_convolve(float *dst, const float *src, const float *weight, const Conv *s, int flip) {
  int in = flip ? s->filters : s->channels, out = flip ? s->channels : s->filters;
  if (!winograd_buffers((size_t)16 * in * out, in)) return 0;
  winograd_transform_filters(winograd_filters, weight, in, out, flip);
  Winograd t = {s->batch, s->height, s->width, in, out, dst, src, NULL, winograd_filters, winograd_zeros, 0};
  parallel(winograd_forward_part, &t, conv_parts(s));
  return !t.failed;
}

// dweight += the weight gradient by Winograd F(2x2, 3x3). Returns 0 when out of memory.
static int winograd_weight_gradient(float *dweight, const float *inp, const float *dout, const Conv *s) {
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

static napi_value out_of_memory(napi_env env) {
  napi_throw_error(env, NULL, "fmnist native: out of memory");
  return NULL;
}

// conv2d(out, inp, weight, batch, height, width, channels, filters, kernel)
static napi_value conv2d(napi_env env, napi_callback_info info) {
  Args args;
  args_init(&args, env, info);
  ConvTask t = {.out = f32(&args, 0), .inp = f32(&args, 1), .weight = f32(&args, 2)};
  if (!conv_args(&args, 3, &t.s)) return NULL;
  if (winograd_applies(&t.s)) return winograd_convolve(t.out, t.inp, t.weight, &t.s, 0) ? undefined(env) : out_of_memory(env);
  parallel(conv_forward_part, &t, conv_parts(&t.s));
  return t.failed ? out_of_memory(env) : undefined(env);
}

// conv2dBackwardInput(dinp, dout, weight, batch, height, width, channels, filters, kernel)
static napi_value conv2d_backward_input(napi_env env, napi_callback_info info) {
  Args args;
  args_init(&args, env, info);
  ConvTask t = {.out = f32(&args, 0), .dout = f32(&args, 1), .weight = f32(&args, 2)};
  if (!conv_args(&args, 3, &t.s)) return NULL;
  if (winograd_applies(&t.s)) return winograd_convolve(t.out, t.dout, t.weight, &t.s, 1) ? undefined(env) : out_of_memory(env);
  parallel(conv_backward_input_part, &t, conv_parts(&t.s));
  return t.failed ? out_of_memory(env) : undefined(env);
}

// conv2dBackwardWeight(dweight, inp, dout, batch, height, width, channels, filters, kernel): dweight += colᵀ · dout
static napi_value conv2d_backward_weight(napi_env env, napi_callback_info info) {
  Args args;
  args_init(&args, env, info);
  ConvTask t = {.out = f32(&args, 0), .inp = f32(&args, 1), .dout = f32(&args, 2)};
  if (!conv_args(&args, 3, &t.s)) return NULL;
  if (winograd_applies(&t.s)) return winograd_weight_gradient(t.out, t.inp, t.dout, &t.s) ? undefined(env) : out_of_memory(env);
  int parts = conv_parts(&t.s);
  size_t size = (size_t)t.s.kernel * t.s.kernel * t.s.channels * t.s.filters;
  if (!reserve_partials(parts, size)) return out_of_memory(env);
  t.partials = partials;
  parallel(conv_backward_weight_part, &t, parts);
  if (t.failed) return out_of_memory(env);
  add_partial_sums(t.out, t.partials, parts - 1, size);
  return undefined(env);
}

typedef struct {
  float *out;  // forward: out; backward: dinp
  const float *inp, *dout, *pooled;
  int height, width, channels;
} PoolArgs;

static void max_pool_images(void *context, int begin, int end) {
  const PoolArgs *p = context;
  int height = p->height, width = p->width, channels = p->channels, oh = height / 2, ow = width / 2;
  for (int b = begin; b < end; b++)
    for (int y = 0; y < oh; y++)
      for (int x = 0; x < ow; x++) {
        float *o = p->out + (((size_t)b * oh + y) * ow + x) * channels;
        const float *i00 = p->inp + (((size_t)b * height + 2 * y) * width + 2 * x) * channels;
        const float *i01 = i00 + channels, *i10 = i00 + (size_t)width * channels, *i11 = i10 + channels;
        for (int c = 0; c < channels; c++) {
          float top = i00[c] > i01[c] ? i00[c] : i01[c];
          float bottom = i10[c] > i11[c] ? i10[c] : i11[c];
          o[c] = top > bottom ? top : bottom;
        }
      }
}

// maxPool2x2(out, inp, batch, height, width, channels)
static napi_value max_pool(napi_env env, napi_callback_info info) {
  Args args;
  args_init(&args, env, info);
  PoolArgs p = {.out = f32(&args, 0), .inp = f32(&args, 1), .height = integer(&args, 3), .width = integer(&args, 4), .channels = integer(&args, 5)};
  int batch = integer(&args, 2);
  if (args.failed) return NULL;
  parallel_range(max_pool_images, &p, batch, 1.25 * p.height * p.width * p.channels);
  return undefined(env);
}

// maxPool2x2Backward(dinp, dout, inp, out, batch, height, width, channels)
static void max_pool_backward_images(void *context, int begin, int end) {
  const PoolArgs *p = context;
  int height = p->height, width = p->width, channels = p->channels, oh = height / 2, ow = width / 2;
  memset(p->out + (size_t)begin * height * width * channels, 0, sizeof(float) * (size_t)(end - begin) * height * width * channels);
  for (int b = begin; b < end; b++)
    for (int y = 0; y < oh; y++)
      for (int x = 0; x < ow; x++) {
        size_t o = (((size_t)b * oh + y) * ow + x) * channels;
        size_t i00 = (((size_t)b * height + 2 * y) * width + 2 * x) * channels;
        size_t window[4] = {i00, i00 + channels, i00 + (size_t)width * channels, i00 + (size_t)(width + 1) * channels};
        for (int c = 0; c < channels; c++) {
          // The first element of the window equal to the maximum takes the gradient.
          size_t winner = i00;
          for (int w = 0; w < 4; w++)
            if (p->inp[window[w] + c] == p->pooled[o + c]) {
              winner = window[w];
              break;
            }
          p->out[winner + c] = p->dout[o + c];
        }
      }
}

// maxPool2x2Backward(dinp, dout, inp, out, batch, height, width, channels)
static napi_value max_pool_backward(napi_env env, napi_callback_info info) {
  Args args;
  args_init(&args, env, info);
  PoolArgs p = {.out = f32(&args, 0), .dout = f32(&args, 1), .inp = f32(&args, 2), .pooled = f32(&args, 3),
                .height = integer(&args, 5), .width = integer(&args, 6), .channels = integer(&args, 7)};
  int batch = integer(&args, 4);
  if (args.failed) return NULL;
  parallel_range(max_pool_backward_images, &p, batch, 3.0 * p.height * p.width * p.channels);
  return undefined(env);
}

static napi_value set_threads(napi_env env, napi_callback_info info) {
  Args args;
  args_init(&args, env, info);
  int threads = integer(&args, 0);
  if (args.failed) return NULL;
  // OpenBLAS single-threaded: the team splits the work (see the top of this file).
  openblas_set_num_threads(1);
  if (!team_start(threads < 1 ? 1 : threads)) {
    napi_throw_error(env, NULL, "fmnist native: cannot start the worker threads");
    return NULL;
  }
  return undefined(env);
}

static napi_value describe(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value result, core, threads;
  napi_create_object(env, &result);
  napi_create_string_utf8(env, openblas_get_corename(), NAPI_AUTO_LENGTH, &core);
  napi_create_int32(env, team.size, &threads);
  napi_set_named_property(env, result, "core", core);
  napi_set_named_property(env, result, "threads", threads);
  return result;
}

#define EXPORT(name, fn)                                        \
  do {                                                          \
    napi_value value;                                           \
    napi_create_function(env, name, NAPI_AUTO_LENGTH, fn, NULL, &value); \
    napi_set_named_property(env, exports, name, value);         \
  } while (0)

static napi_value init(napi_env env, napi_value exports) {
  EXPORT("gemm", gemm);
  EXPORT("gatherPixels", gather_pixels);
  EXPORT("zero", zero);
  EXPORT("dropoutMask", dropout_mask);
  EXPORT("addBias", add_bias);
  EXPORT("sumRows", sum_rows);
  EXPORT("relu", relu);
  EXPORT("reluBackward", relu_backward);
  EXPORT("multiply", multiply);
  EXPORT("softmaxCrossEntropy", softmax_cross_entropy);
  EXPORT("softmaxCrossEntropyBackward", softmax_cross_entropy_backward);
  EXPORT("sgdStep", sgd_step);
  EXPORT("adamStep", adam_step);
  EXPORT("conv2d", conv2d);
  EXPORT("conv2dBackwardInput", conv2d_backward_input);
  EXPORT("conv2dBackwardWeight", conv2d_backward_weight);
  EXPORT("maxPool2x2", max_pool);
  EXPORT("maxPool2x2Backward", max_pool_backward);
  EXPORT("setThreads", set_threads);
  EXPORT("describe", describe);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
