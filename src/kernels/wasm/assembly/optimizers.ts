// The optimisers' update steps, in place over a parameter buffer and its state; every value
// they store is flushed (+0 where it would be subnormal: subnormal.ts).

import { at } from './addresses';
import { flushSubnormal, flushSubnormal4 } from './subnormal';

/** One SGD step with (Nesterov) momentum and L2 weight decay, as the TypeScript reference. */
export function sgdStep(param: usize, grad: usize, velocity: usize, n: i32, lr: f32, momentum: f32, nesterov: bool, decay: f32): void {
  for (let i = 0; i < n; i++) {
    const p = load<f32>(at(param, i));
    let g = load<f32>(at(grad, i)) + decay * p;
    if (momentum != 0) {
      const v = flushSubnormal(momentum * load<f32>(at(velocity, i)) + g);
      store<f32>(at(velocity, i), v);
      g = nesterov ? g + momentum * v : v;
    }
    store<f32>(at(param, i), flushSubnormal(p - lr * g));
  }
}

/**
 * One Adam step with L2 weight decay. `stepSize` = lr / (1 - beta1^t) and `correction2`
 * = 1 - beta2^t are computed once by the caller in float64.
 */
export function adamUpdate(
  param: usize, grad: usize, m: usize, v: usize, n: i32,
  stepSize: f32, beta1: f32, beta2: f32, epsilon: f32, decay: f32, correction2: f32,
): void {
  const b1 = f32x4.splat(beta1), b2 = f32x4.splat(beta2);
  const ob1 = f32x4.splat(1 - beta1), ob2 = f32x4.splat(1 - beta2);
  const wd = f32x4.splat(decay), eps = f32x4.splat(epsilon);
  const step = f32x4.splat(stepSize), invC2 = f32x4.splat(1 / correction2);
  const vecEnd = n & ~3;
  for (let i = 0; i < vecEnd; i += 4) {
    const p = v128.load(at(param, i));
    const g = f32x4.add(v128.load(at(grad, i)), f32x4.mul(wd, p));
    const mi = flushSubnormal4(f32x4.add(f32x4.mul(b1, v128.load(at(m, i))), f32x4.mul(ob1, g)));
    const vi = flushSubnormal4(f32x4.add(f32x4.mul(b2, v128.load(at(v, i))), f32x4.mul(ob2, f32x4.mul(g, g))));
    v128.store(at(m, i), mi);
    v128.store(at(v, i), vi);
    const denominator = f32x4.add(f32x4.sqrt(f32x4.mul(vi, invC2)), eps);
    v128.store(at(param, i), flushSubnormal4(f32x4.sub(p, f32x4.div(f32x4.mul(step, mi), denominator))));
  }
  for (let i = vecEnd; i < n; i++) {
    const p = load<f32>(at(param, i));
    const g = load<f32>(at(grad, i)) + decay * p;
    const mi = flushSubnormal(beta1 * load<f32>(at(m, i)) + (1 - beta1) * g);
    const vi = flushSubnormal(beta2 * load<f32>(at(v, i)) + (1 - beta2) * g * g);
    store<f32>(at(m, i), mi);
    store<f32>(at(v, i), vi);
    store<f32>(at(param, i), flushSubnormal(p - (stepSize * mi) / (Mathf.sqrt(vi / correction2) + epsilon)));
  }
}
