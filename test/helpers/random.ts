import type { Tensor } from '../../src/kernels/index.ts';
import { Rng } from '../../src/random/rng.ts';

/** A Float32Array of `n` values uniform in [-scale, scale), from a seeded generator. */
export function randomArray(rng: Rng, n: number, scale = 1): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = (2 * rng.uniform() - 1) * scale;
  return a;
}

/** Largest |a - b| relative to max(1, |b|), over all elements. */
export function maxRelativeError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]) / Math.max(1, Math.abs(b[i])));
  return worst;
}

export { Rng };

/** A CPU backend's tensor as the Float32Array it is (tests read and write those in place). */
export function host(tensor: Tensor): Float32Array {
  if (!(tensor instanceof Float32Array)) throw new Error('a CPU backend\'s tensor is a Float32Array');
  return tensor;
}
