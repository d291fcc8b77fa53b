// The native backend: the kernel interface (src/kernels/types.ts) in C over OpenBLAS, as a
// Node-API addon. Every array argument is a typed array whose memory is used in place (no
// copies between JavaScript and C). Matrix products go to cblas_sgemm, which uses all the
// threads OpenBLAS is given; convolutions are im2col + one sgemm per chunk of images. The loops
// around the products (im2col, col2im, pooling) run on the calling thread: parallelising them
// with OpenMP made 2-thread training 2-4x slower on a 2-vCPU machine, where OpenMP's and
// OpenBLAS's idle threads spin against each other (560-584 images/s without it, 142-290 with).
#include <cblas.h>
#include <math.h>
#include <node_api.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

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

static void *typed(Args *args, size_t i, napi_typedarray_type want) {
  if (args->failed) return NULL;
  bool is_typed = false;
  if (i >= args->argc || napi_is_typedarray(args->env, args->argv[i], &is_typed) != napi_ok || !is_typed) {
    napi_throw_type_error(args->env, NULL, "fmnist native: expected a typed array argument");
    args->failed = 1;
    return NULL;
  }
  napi_typedarray_type type;
  size_t length;
  void *data;
  napi_get_typedarray_info(args->env, args->argv[i], &type, &length, &data, NULL, NULL);
  if (type != want) {
    napi_throw_type_error(args->env, NULL, "fmnist native: typed array of the wrong element type");
    args->failed = 1;
    return NULL;
  }
  return data;
}

static float *f32(Args *args, size_t i) { return (float *)typed(args, i, napi_float32_array); }
static uint8_t *u8(Args *args, size_t i) { return (uint8_t *)typed(args, i, napi_uint8_array); }

static double num(Args *args, size_t i) {
  double value = 0;
  if (!args->failed && (i >= args->argc || napi_get_value_double(args->env, args->argv[i], &value) != napi_ok)) {
    napi_throw_type_error(args->env, NULL, "fmnist native: expected a number argument");
    args->failed = 1;
  }
  return value;
}

static int integer(Args *args, size_t i) { return (int)num(args, i); }

static napi_value undefined(napi_env env) {
  napi_value value;
  napi_get_undefined(env, &value);
  return value;
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
  cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, m, n, k, 1.0f, a,
              trans_a ? m : k, b, trans_b ? k : n, accumulate ? 1.0f : 0.0f, c, n);
  return undefined(env);
}

static napi_value add_bias(napi_env env, napi_callback_info info) {
  Args args;
  args_init(&args, env, info);
  float *out = f32(&args, 0), *bias = f32(&args, 1);
  int rows = integer(&args, 2), cols = integer(&args, 3);
  if (args.failed) return NULL;
  for (int r = 0; r < rows; r++) {
    float *row = out + (size_t)r * cols;
    for (int c = 0; c < cols; c++) row[c] += bias[c];
  }
  return undefined(env);
}

static napi_value sum_rows(napi_env env, napi_callback_info info) {
  Args args;
  args_init(&args, env, info);
  float *dbias = f32(&args, 0), *dout = f32(&args, 1);
  int rows = integer(&args, 2), cols = integer(&args, 3);
  if (args.failed) return NULL;
  for (int r = 0; r < rows; r++) {
    const float *row = dout + (size_t)r * cols;
    for (int c = 0; c < cols; c++) dbias[c] += row[c];
  }
  return undefined(env);
}

static napi_value relu(napi_env env, napi_callback_info info) {
  Args args;
  args_init(&args, env, info);
  float *out = f32(&args, 0), *inp = f32(&args, 1);
  int n = integer(&args, 2);
  if (args.failed) return NULL;
  for (int i = 0; i < n; i++) out[i] = inp[i] > 0 ? inp[i] : 0;
  return undefined(env);
}

static napi_value relu_backward(napi_env env, napi_callback_info info) {
  Args args;
  args_init(&args, env, info);
  float *dinp = f32(&args, 0), *dout = f32(&args, 1), *out = f32(&args, 2);
  int n = integer(&args, 3);
  if (args.failed) return NULL;
  for (int i = 0; i < n; i++) dinp[i] = out[i] > 0 ? dout[i] : 0;
  return undefined(env);
}

static napi_value multiply(napi_env env, napi_callback_info info) {
  Args args;
  args_init(&args, env, info);
  float *out = f32(&args, 0), *a = f32(&args, 1), *b = f32(&args, 2);
  int n = integer(&args, 3);
  if (args.failed) return NULL;
  for (int i = 0; i < n; i++) out[i] = a[i] * b[i];
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
  float *param = f32(&args, 0), *grad = f32(&args, 1), *velocity = f32(&args, 2);
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
static napi_value adam_step(napi_env env, napi_callback_info info) {
  Args args;
  args_init(&args, env, info);
  float *param = f32(&args, 0), *grad = f32(&args, 1), *m = f32(&args, 2), *v = f32(&args, 3);
  int n = integer(&args, 4);
  float step_size = (float)num(&args, 5), beta1 = (float)num(&args, 6), beta2 = (float)num(&args, 7);
  float epsilon = (float)num(&args, 8), decay = (float)num(&args, 9), correction2 = (float)num(&args, 10);
  if (args.failed) return NULL;
  for (int i = 0; i < n; i++) {
    float g = grad[i] + decay * param[i];
    m[i] = beta1 * m[i] + (1 - beta1) * g;
    v[i] = beta2 * v[i] + (1 - beta2) * g * g;
    param[i] -= step_size * m[i] / (sqrtf(v[i] / correction2) + epsilon);
  }
  return undefined(env);
}

// ---- Convolution, NHWC, stride 1, "same" padding: im2col + sgemm over chunks of images ----

typedef struct {
  int batch, height, width, channels, filters, kernel;
} Conv;

static float *columns = NULL;
static size_t columns_floats = 0;

// A buffer for the column matrices of `images` images, grown as needed (the addon runs on the
// JavaScript thread only, so one buffer serves every call).
static float *column_buffer(size_t floats) {
  if (floats > columns_floats) {
    free(columns);
    columns = malloc(sizeof(float) * floats);
    columns_floats = columns ? floats : 0;
  }
  return columns;
}

// Images per sgemm: enough rows (pixels) to keep OpenBLAS's threads busy, few enough for the
// column matrix to stay in cache.
static int chunk_images(const Conv *s) {
  int pixels = s->height * s->width;
  int chunk = (4096 + pixels - 1) / pixels;
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

// conv2d(out, inp, weight, batch, height, width, channels, filters, kernel)
static napi_value conv2d(napi_env env, napi_callback_info info) {
  Args args;
  args_init(&args, env, info);
  float *out = f32(&args, 0), *inp = f32(&args, 1), *weight = f32(&args, 2);
  Conv s;
  if (!conv_args(&args, 3, &s)) return NULL;
  int pixels = s.height * s.width, taps = s.kernel * s.kernel * s.channels, chunk = chunk_images(&s);
  float *col = column_buffer((size_t)chunk * pixels * taps);
  if (!col) return napi_throw_error(env, NULL, "fmnist native: out of memory"), NULL;
  for (int b0 = 0; b0 < s.batch; b0 += chunk) {
    int images = s.batch - b0 < chunk ? s.batch - b0 : chunk;
    for (int i = 0; i < images; i++) im2col(col + (size_t)i * pixels * taps, inp + (size_t)(b0 + i) * pixels * s.channels, &s);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, images * pixels, s.filters, taps, 1.0f, col, taps, weight, s.filters, 0.0f,
                out + (size_t)b0 * pixels * s.filters, s.filters);
  }
  return undefined(env);
}

// conv2dBackwardInput(dinp, dout, weight, batch, height, width, channels, filters, kernel)
static napi_value conv2d_backward_input(napi_env env, napi_callback_info info) {
  Args args;
  args_init(&args, env, info);
  float *dinp = f32(&args, 0), *dout = f32(&args, 1), *weight = f32(&args, 2);
  Conv s;
  if (!conv_args(&args, 3, &s)) return NULL;
  int pixels = s.height * s.width, taps = s.kernel * s.kernel * s.channels, chunk = chunk_images(&s);
  float *col = column_buffer((size_t)chunk * pixels * taps);
  if (!col) return napi_throw_error(env, NULL, "fmnist native: out of memory"), NULL;
  memset(dinp, 0, sizeof(float) * (size_t)s.batch * pixels * s.channels);
  for (int b0 = 0; b0 < s.batch; b0 += chunk) {
    int images = s.batch - b0 < chunk ? s.batch - b0 : chunk;
    // dcol[rows, taps] = dout[rows, filters] · weight[taps, filters]ᵀ
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, images * pixels, taps, s.filters, 1.0f, dout + (size_t)b0 * pixels * s.filters,
                s.filters, weight, s.filters, 0.0f, col, taps);
    for (int i = 0; i < images; i++) col2im_add(dinp + (size_t)(b0 + i) * pixels * s.channels, col + (size_t)i * pixels * taps, &s);
  }
  return undefined(env);
}

// conv2dBackwardWeight(dweight, inp, dout, batch, height, width, channels, filters, kernel): dweight += colᵀ · dout
static napi_value conv2d_backward_weight(napi_env env, napi_callback_info info) {
  Args args;
  args_init(&args, env, info);
  float *dweight = f32(&args, 0), *inp = f32(&args, 1), *dout = f32(&args, 2);
  Conv s;
  if (!conv_args(&args, 3, &s)) return NULL;
  int pixels = s.height * s.width, taps = s.kernel * s.kernel * s.channels, chunk = chunk_images(&s);
  float *col = column_buffer((size_t)chunk * pixels * taps);
  if (!col) return napi_throw_error(env, NULL, "fmnist native: out of memory"), NULL;
  for (int b0 = 0; b0 < s.batch; b0 += chunk) {
    int images = s.batch - b0 < chunk ? s.batch - b0 : chunk;
    for (int i = 0; i < images; i++) im2col(col + (size_t)i * pixels * taps, inp + (size_t)(b0 + i) * pixels * s.channels, &s);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, taps, s.filters, images * pixels, 1.0f, col, taps,
                dout + (size_t)b0 * pixels * s.filters, s.filters, 1.0f, dweight, s.filters);
  }
  return undefined(env);
}

// maxPool2x2(out, inp, batch, height, width, channels)
static napi_value max_pool(napi_env env, napi_callback_info info) {
  Args args;
  args_init(&args, env, info);
  float *out = f32(&args, 0), *inp = f32(&args, 1);
  int batch = integer(&args, 2), height = integer(&args, 3), width = integer(&args, 4), channels = integer(&args, 5);
  if (args.failed) return NULL;
  int oh = height / 2, ow = width / 2;
  for (int b = 0; b < batch; b++)
    for (int y = 0; y < oh; y++)
      for (int x = 0; x < ow; x++) {
        float *o = out + (((size_t)b * oh + y) * ow + x) * channels;
        const float *i00 = inp + (((size_t)b * height + 2 * y) * width + 2 * x) * channels;
        const float *i01 = i00 + channels, *i10 = i00 + (size_t)width * channels, *i11 = i10 + channels;
        for (int c = 0; c < channels; c++) {
          float top = i00[c] > i01[c] ? i00[c] : i01[c];
          float bottom = i10[c] > i11[c] ? i10[c] : i11[c];
          o[c] = top > bottom ? top : bottom;
        }
      }
  return undefined(env);
}

// maxPool2x2Backward(dinp, dout, inp, out, batch, height, width, channels)
static napi_value max_pool_backward(napi_env env, napi_callback_info info) {
  Args args;
  args_init(&args, env, info);
  float *dinp = f32(&args, 0), *dout = f32(&args, 1), *inp = f32(&args, 2), *out = f32(&args, 3);
  int batch = integer(&args, 4), height = integer(&args, 5), width = integer(&args, 6), channels = integer(&args, 7);
  if (args.failed) return NULL;
  int oh = height / 2, ow = width / 2;
  memset(dinp, 0, sizeof(float) * (size_t)batch * height * width * channels);
  for (int b = 0; b < batch; b++)
    for (int y = 0; y < oh; y++)
      for (int x = 0; x < ow; x++) {
        size_t o = (((size_t)b * oh + y) * ow + x) * channels;
        size_t i00 = (((size_t)b * height + 2 * y) * width + 2 * x) * channels;
        size_t window[4] = {i00, i00 + channels, i00 + (size_t)width * channels, i00 + (size_t)(width + 1) * channels};
        for (int c = 0; c < channels; c++) {
          // The first element of the window equal to the maximum takes the gradient.
          size_t winner = i00;
          for (int w = 0; w < 4; w++)
            if (inp[window[w] + c] == out[o + c]) {
              winner = window[w];
              break;
            }
          dinp[winner + c] = dout[o + c];
        }
      }
  return undefined(env);
}

static napi_value set_threads(napi_env env, napi_callback_info info) {
  Args args;
  args_init(&args, env, info);
  int threads = integer(&args, 0);
  if (args.failed) return NULL;
  openblas_set_num_threads(threads);
  return undefined(env);
}

static napi_value describe(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value result, core, threads;
  napi_create_object(env, &result);
  napi_create_string_utf8(env, openblas_get_corename(), NAPI_AUTO_LENGTH, &core);
  napi_create_int32(env, openblas_get_num_threads(), &threads);
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
