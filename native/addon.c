// The native backend: the kernels of src/kernels/spec.ts in C over OpenBLAS, as a Node-API
// addon. Each kernel is implemented in the file of its concern (gemm.c, elementwise.c,
// gather.c, dropout.c, loss.c, optimizers.c, convolution.c and winograd.c, pooling.c,
// batchnorm.c) as fm_<name> with the prototype generated into kernels.h, each over the thread
// team of team.c (whose top says why the addon runs its own threads); generated/bindings.c
// exports them. This file adds the addon's own controls and registers the module.
#include <cblas.h>
#include <node_api.h>

#include "napi_args.h"
#include "team.h"

// OpenBLAS's own controls (declared in its cblas.h, repeated for builds whose header lacks them).
extern void openblas_set_num_threads(int);
extern char *openblas_get_corename(void);

// setThreads(threads): the team's size, the calling thread included.
static napi_value set_threads(napi_env env, napi_callback_info info) {
  Args args;
  args_init(&args, env, info);
  int threads = (int)num(&args, 0);
  if (args.failed) return NULL;
  // OpenBLAS single-threaded: the team splits the work (see the top of team.c).
  openblas_set_num_threads(1);
  if (!team_start(threads < 1 ? 1 : threads)) {
    napi_throw_error(env, NULL, "fmnist native: cannot start the worker threads");
    return NULL;
  }
  return undefined(env);
}

// describe(): { core: OpenBLAS's kernel type, threads: the team's size }
static napi_value describe(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value result, core, threads;
  napi_create_object(env, &result);
  napi_create_string_utf8(env, openblas_get_corename(), NAPI_AUTO_LENGTH, &core);
  napi_create_int32(env, team_size(), &threads);
  napi_set_named_property(env, result, "core", core);
  napi_set_named_property(env, result, "threads", threads);
  return result;
}

static napi_value init(napi_env env, napi_value exports) {
  fm_register_kernels(env, exports);
  export_function(env, exports, "setThreads", set_threads);
  export_function(env, exports, "describe", describe);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
