import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { UsageError } from '../src/errors.ts';
import { loadKernels } from '../src/kernels/index.ts';
import { loadNativeKernels, nativeBuildPresent, nativeGemmWidths } from '../src/kernels/native/node.ts';
import { randomArray, Rng } from './helpers/random.ts';

test('auto uses the native backend when it is built', { skip: nativeBuildPresent() ? false : 'the native backend is not built here' }, async () => {
  const messages: string[] = [];
  const kernels = await loadKernels('auto', { threads: 1, onFallback: (message) => messages.push(message) });
  assert.equal(kernels.name, 'native');
  assert.match(kernels.description, /^native \((AVX-512|AVX2|scalar), 1 thread\)$/);
  assert.deepEqual(messages, []);
});

// The native products sum each element of C as one chain of fused multiply-adds in k order, the
// vector running across C's columns, so the width must not change a bit: the scalar chain (fmaf,
// one element at a time) is the standard the others are held to. Shapes with edges at every
// width, all three products with and without accumulation, and convolutions by im2col and by
// Winograd (whose products read A with a stride and accumulate over chunks of tiles).
test('the native products give the same bits at every vector width this CPU has', { skip: nativeBuildPresent() ? false : 'the native backend is not built here' }, () => {
  const widths = nativeGemmWidths();
  assert.ok(widths.includes(1), `the scalar width is always there, got ${widths.join(', ')}`);
  const run = (width: 16 | 8 | 1) => {
    const kernels = loadNativeKernels({ threads: 2, gemmWidth: width });
    assert.match(kernels.description, width === 16 ? /AVX-512/ : width === 8 ? /AVX2/ : /scalar/);
    const rng = Rng.fromSeed(7);
    const outputs: Float32Array[] = [];
    for (const [m, k, n] of [[1, 1, 1], [13, 5, 35], [25, 300, 33], [97, 17, 130], [64, 784, 10], [33, 701, 130], [3, 9, 1100]] as const) {
      for (const product of [kernels.matmul, kernels.matmulTransA, kernels.matmulTransB]) {
        const a = randomArray(rng, m * k), b = randomArray(rng, k * n), c = randomArray(rng, m * n);
        product({ c, a, b, m, k, n, accumulate: true });
        outputs.push(Float32Array.from(c));
        product({ c, a, b, m, k, n, accumulate: false });
        outputs.push(c);
      }
    }
    for (const shape of [{ batch: 3, height: 5, width: 7, inChannels: 3, outChannels: 5, kernelSize: 3 }, { batch: 5, height: 14, width: 14, inChannels: 24, outChannels: 40, kernelSize: 3 }]) {
      const pixels = shape.batch * shape.height * shape.width;
      const inp = randomArray(rng, pixels * shape.inChannels), dout = randomArray(rng, pixels * shape.outChannels);
      const weight = randomArray(rng, 9 * shape.inChannels * shape.outChannels);
      const out = new Float32Array(pixels * shape.outChannels), dinp = new Float32Array(pixels * shape.inChannels), dweight = new Float32Array(weight.length);
      kernels.conv2d({ out, inp, weight, ...shape });
      kernels.conv2dBackwardInput({ dinp, dout, weight, ...shape });
      kernels.conv2dBackwardWeight({ dweight, inp, dout, ...shape });
      outputs.push(out, dinp, dweight);
    }
    return outputs;
  };
  const scalar = run(1);
  for (const width of widths.filter((width) => width !== 1)) {
    const outputs = run(width);
    outputs.forEach((output, i) => assert.deepEqual(new Uint32Array(output.buffer), new Uint32Array(scalar[i].buffer), `output ${i}, width ${width} against the scalar chain`));
  }
  loadNativeKernels({ threads: 2 });
});

test('a vector width that this CPU lacks, or an unknown FMNIST_GEMM_WIDTH, is a usage error', { skip: nativeBuildPresent() ? false : 'the native backend is not built here' }, () => {
  const saved = process.env.FMNIST_GEMM_WIDTH;
  try {
    process.env.FMNIST_GEMM_WIDTH = '4';
    assert.throws(() => loadNativeKernels({ threads: 1 }), (error: unknown) => error instanceof UsageError && /FMNIST_GEMM_WIDTH must be 16, 8 or 1/.test(error.message));
  } finally {
    if (saved === undefined) delete process.env.FMNIST_GEMM_WIDTH;
    else process.env.FMNIST_GEMM_WIDTH = saved;
  }
  if (!nativeGemmWidths().includes(16)) {
    assert.throws(() => loadNativeKernels({ threads: 1, gemmWidth: 16 }), (error: unknown) => error instanceof UsageError && /cannot run the native matrix products 16 floats wide/.test(error.message));
  }
  loadNativeKernels({ threads: 1 });
});

test('without the native addon, auto falls back to wasm and says why, once', async () => {
  const messages: string[] = [];
  const kernels = await loadKernels('auto', { threads: 1, nativeAddonPath: '/nonexistent/fmnist_native.node', onFallback: (m) => messages.push(m) });
  assert.equal(kernels.name, 'wasm');
  assert.deepEqual(messages, ['using the wasm backend: the native backend is not built (it needs a C compiler at install time)']);
});

test('asking for the native backend where it is missing is a clear usage error', async () => {
  await assert.rejects(
    loadKernels('native', { nativeAddonPath: '/nonexistent/fmnist_native.node' }),
    (error: unknown) => error instanceof UsageError && /not built; install a C compiler/.test(error.message),
  );
});

test(
  'the native thread team hands out its first task however soon after it starts (no deadlock)',
  { skip: nativeBuildPresent() ? false : 'the native backend is not built here' },
  () => {
    // Each load restarts the team; a worker that missed a task handed out before it first looked
    // left the caller waiting forever. A child process, so that a hang fails the test by its timeout.
    const script = `
      import { loadNativeKernels } from './src/kernels/native/node.ts';
      const shape = { batch: 4, height: 8, width: 8, inChannels: 8, outChannels: 8, kernelSize: 3 };
      let kernels = loadNativeKernels({ threads: 2 });
      const inp = kernels.allocate(4 * 64 * 8), weight = kernels.allocate(9 * 64), out = kernels.allocate(4 * 64 * 8);
      for (let i = 0; i < 1000; i++) {
        kernels = loadNativeKernels({ threads: 2 + (i % 2) });
        kernels.conv2d({ out, inp, weight, ...shape });
      }
      console.log('done');
    `;
    const result = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(result.signal, null, 'the team deadlocked (killed after 60 s)');
    assert.equal(result.stdout.trim(), 'done', result.stderr);
  },
);
