// The optimisers' steps: SGD (with momentum, Nesterov's or not) and Adam, each with L2 weight
// decay added to the gradient. Every value they store is flushed: +0 where it would be subnormal
// (subnormal.h; why: spec.ts, sgdStep).
#include <math.h>

#include "kernels.h"
#include "subnormal.h"
#include "team.h"

void fm_sgd_step(float *restrict param, const float *restrict grad, float *restrict velocity, int32_t n, float learning_rate, float momentum,
                 int32_t nesterov, float weight_decay) {
  for (int i = 0; i < n; i++) {
    float g = grad[i] + weight_decay * param[i];
    if (momentum != 0) {
      velocity[i] = flush_subnormal(momentum * velocity[i] + g);
      g = nesterov ? g + momentum * velocity[i] : velocity[i];
    }
    param[i] = flush_subnormal(param[i] - learning_rate * g);
  }
}

// step_size = lr / (1 - beta1^t), correction2 = 1 - beta2^t
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
    m[i] = flush_subnormal(beta1 * m[i] + (1 - beta1) * g);
    v[i] = flush_subnormal(beta2 * v[i] + (1 - beta2) * g * g);
    param[i] = flush_subnormal(param[i] - step_size * m[i] / (sqrtf(v[i] / correction2) + epsilon));
  }
}

void fm_adam_update(float *param, const float *grad, float *m, float *v, int32_t n, float step_size, float beta1, float beta2, float epsilon,
                    float weight_decay, float correction2) {
  AdamArgs a = {param, m, v, grad, step_size, beta1, beta2, epsilon, weight_decay, correction2};
  parallel_range(adam_range, &a, n, 4);
}
