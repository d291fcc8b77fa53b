import assert from 'node:assert/strict';
import { test } from 'node:test';
import { jsKernels, type Kernels } from '../src/kernels/index.ts';
import { loadNativeKernels, nativeBuildPresent } from '../src/kernels/native/node.ts';
import { loadWasmKernels } from '../src/kernels/wasm/node.ts';
import { kernelSuite } from './helpers/kernel-suite.ts';
import { randomArray, Rng } from './helpers/random.ts';

// Every CPU backend, and for wasm both builds (relaxed SIMD and plain SIMD) and both thread
// paths. The native backend where it was built (CI installs a C compiler, so it is there).
// The WebGPU backend runs the same suite in test/webgpu.test.ts.
const backends: Kernels[] = [
  jsKernels,
  await loadWasmKernels({ threads: 1 }),
  await loadWasmKernels({ threads: 2 }),
  await loadWasmKernels({ threads: 2, relaxed: false }),
  ...(nativeBuildPresent() ? [loadNativeKernels({ threads: 2 })] : []),
];

for (const kernels of backends) kernelSuite(kernels);

test('the CPU backends take any Float32Array, not only their own tensors, and write back what the kernel writes', () => {
  const rng = Rng.fromSeed(19);
  const [m, k, n] = [37, 300, 70];
  const a = randomArray(rng, m * k);
  const b = randomArray(rng, k * n);
  const expected = new Float32Array(m * n);
  jsKernels.matmul({ c: expected, a, b, m, k, n, accumulate: false });
  for (const kernels of backends) {
    // Plain arrays, and views into the middle of a larger one.
    const c = new Float32Array(m * n + 3);
    kernels.matmul({ c: c.subarray(3), a, b, m, k, n, accumulate: false });
    assert.ok(c.subarray(3).every((value, i) => Math.abs(value - expected[i]) <= 1e-4 * Math.max(1, Math.abs(expected[i]))), kernels.description);
    assert.deepEqual([...c.subarray(0, 3)], [0, 0, 0], `${kernels.description}: nothing written before the view`);
  }
});

test("dropout's generator keeps each element with the asked probability, independently of its neighbours and of other keys", () => {
  const n = 1 << 20;
  const rng = Rng.fromSeed(15);
  const masks = [0, 1].map(() => {
    const mask = new Float32Array(n);
    jsKernels.dropoutMask({ mask, n, threshold: 52429, scale: 1, key0: rng.bits(), key1: rng.bits() });
    return mask;
  });
  const keep = 52429 / 65536;
  // Each count of kept elements, as a z-score of a binomial(n, keep) or, for pairs, of the
  // product of two independent draws (keep²); 5 standard deviations leave false alarms at 1e-6.
  const z = (count: number, trials: number, p: number) => (count - trials * p) / Math.sqrt(trials * p * (1 - p));
  const [first, second] = masks;
  let kept = 0;
  let adjacent = 0;
  let halves = 0;
  let acrossKeys = 0;
  for (let i = 0; i < n; i++) {
    kept += first[i];
    if (i + 1 < n) adjacent += first[i] * first[i + 1];
    if (i % 8 < 4) halves += first[i] * first[i + 4];
    acrossKeys += first[i] * second[i];
  }
  assert.ok(Math.abs(z(kept, n, keep)) < 5, `kept ${kept} of ${n}`);
  assert.ok(Math.abs(z(adjacent, n - 1, keep * keep)) < 5, `adjacent pairs kept: ${adjacent}`);
  assert.ok(Math.abs(z(halves, n / 2, keep * keep)) < 5, `pairs from one word kept: ${halves}`);
  assert.ok(Math.abs(z(acrossKeys, n, keep * keep)) < 5, `same element under two keys kept: ${acrossKeys}`);
});
