// The native backend: the kernels of src/kernels/spec.ts in C, as a Node-API addon. Each kernel is implemented in the file of its concern (gemm.c, elementwise.c,
// gather.c, dropout.c, loss.c, optimizers.c, convolution.c and winograd.c, pooling.c,
// batchnorm.c) as fm_<name> with the prototype generated into kernels.h, each over the thread
// team of team.c (whose top says why the addon runs its own threads), their matrix products by
// sgemm.c; generated/bindings.c exports them. This file adds the addon's own controls and registers the module.
#include <node_api.h>

#include "napi_args.h"
#include "sgemm.h"
#include "team.h"

// setThreads(threads): the team's size, the calling thread included.
static napi_value set_threads(napi_env env, napi_callback_info info) {
  Args args;
  args_init(&args, env, info);
  int threads = (int)num(&args, 0);
  if (args.failed) return NULL;
  if (!team_start(threads < 1 ? 1 : threads)) {
    napi_throw_error(env, NULL, "fmnist native: cannot start the worker threads");
    return NULL;
  }
  return undefined(env);
}

// setGemmWidth(width): the matrix products' vector width, 0 for the widest; returns whether
// this CPU can run it (every width gives the same bits: sgemm.c).
static napi_value set_gemm_width(napi_env env, napi_callback_info info) {
  Args args;
  args_init(&args, env, info);
  int width = (int)num(&args, 0);
  if (args.failed) return NULL;
  napi_value result;
  napi_get_boolean(env, sgemm_set_width(width), &result);
  return result;
}

// describe(): { widths: the vector widths this CPU can run the products at, widest first,
// width: the one in use, threads: the team's size }
static napi_value describe(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value result, widths, width, threads;
  int available[3], count = sgemm_widths(available);
  napi_create_object(env, &result);
  napi_create_array_with_length(env, (size_t)count, &widths);
  for (int i = 0; i < count; i++) {
    napi_value value;
    napi_create_int32(env, available[i], &value);
    napi_set_element(env, widths, (uint32_t)i, value);
  }
  napi_create_int32(env, sgemm_width(), &width);
  napi_create_int32(env, team_size(), &threads);
  napi_set_named_property(env, result, "widths", widths);
  napi_set_named_property(env, result, "width", width);
  napi_set_named_property(env, result, "threads", threads);
  return result;
}

// When this environment ends (a worker thread's, or the process's), this thread's packing
// buffers go with it (sgemm.c says why not at thread exit).
static void release_buffers(void *unused) {
  (void)unused;
  sgemm_release_buffers();
}

static napi_value init(napi_env env, napi_value exports) {
  napi_add_env_cleanup_hook(env, release_buffers, NULL);
  fm_register_kernels(env, exports);
  export_function(env, exports, "setThreads", set_threads);
  export_function(env, exports, "setGemmWidth", set_gemm_width);
  export_function(env, exports, "describe", describe);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
