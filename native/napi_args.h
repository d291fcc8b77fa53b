// Reading a JavaScript call's arguments in C: the helpers that generated/bindings.c (written by
// scripts/generate-kernels.ts from src/kernels/spec.ts) and addon.c decode with. Typed arrays
// are used in place (no copies between JavaScript and C). A failed check throws a TypeError
// and marks the call failed, so the binding returns without running its kernel.
#ifndef FMNIST_NAPI_ARGS_H
#define FMNIST_NAPI_ARGS_H

#include <node_api.h>
#include <stdbool.h>
#include <stdint.h>

#define MAX_ARGS 16

typedef struct {
  napi_env env;
  napi_value argv[MAX_ARGS];
  size_t argc;
  int failed;
} Args;

static inline void args_init(Args *args, napi_env env, napi_callback_info info) {
  args->env = env;
  args->argc = MAX_ARGS;
  args->failed = 0;
  napi_get_cb_info(env, info, &args->argc, args->argv, NULL, NULL);
}

static inline void args_fail(Args *args, const char *message) {
  napi_throw_type_error(args->env, NULL, message);
  args->failed = 1;
}

// Argument i's data, checked to be a typed array of type `want`; its element count goes to
// *length where that is not NULL.
static inline void *typed(Args *args, size_t i, napi_typedarray_type want, size_t *length) {
  if (args->failed) return NULL;
  bool is_typed = false;
  if (i >= args->argc || napi_is_typedarray(args->env, args->argv[i], &is_typed) != napi_ok || !is_typed) {
    args_fail(args, "fmnist native: expected a typed array argument");
    return NULL;
  }
  napi_typedarray_type type;
  void *data;
  napi_get_typedarray_info(args->env, args->argv[i], &type, length, &data, NULL, NULL);
  if (type != want) {
    args_fail(args, "fmnist native: typed array of the wrong element type");
    return NULL;
  }
  return data;
}

static inline float *f32(Args *args, size_t i) { return (float *)typed(args, i, napi_float32_array, NULL); }
static inline uint8_t *u8(Args *args, size_t i) { return (uint8_t *)typed(args, i, napi_uint8_array, NULL); }
static inline int32_t *i32(Args *args, size_t i, size_t *length) { return (int32_t *)typed(args, i, napi_int32_array, length); }

// A number argument; the caller converts it as C converts a double (ints truncate, floats round).
static inline double num(Args *args, size_t i) {
  double value = 0;
  if (!args->failed && (i >= args->argc || napi_get_value_double(args->env, args->argv[i], &value) != napi_ok)) {
    args_fail(args, "fmnist native: expected a number argument");
  }
  return value;
}

// A boolean argument, as 0 or 1.
static inline int32_t flag(Args *args, size_t i) {
  bool value = false;
  if (!args->failed && (i >= args->argc || napi_get_value_bool(args->env, args->argv[i], &value) != napi_ok)) {
    args_fail(args, "fmnist native: expected a boolean argument");
  }
  return value ? 1 : 0;
}

static inline napi_value undefined(napi_env env) {
  napi_value value;
  napi_get_undefined(env, &value);
  return value;
}

static inline napi_value number(napi_env env, double x) {
  napi_value value;
  napi_create_double(env, x, &value);
  return value;
}

static inline napi_value out_of_memory(napi_env env) {
  napi_throw_error(env, NULL, "fmnist native: out of memory");
  return NULL;
}

static inline void export_function(napi_env env, napi_value exports, const char *name, napi_callback function) {
  napi_value value;
  napi_create_function(env, name, NAPI_AUTO_LENGTH, function, NULL, &value);
  napi_set_named_property(env, exports, name, value);
}

// Defined in generated/bindings.c: exports every kernel of src/kernels/spec.ts.
void fm_register_kernels(napi_env env, napi_value exports);

#endif
