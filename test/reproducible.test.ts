import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { nativeBuildPresent, nativeGemmWidths } from '../src/kernels/native/node.ts';
import { trainCnn, trainMlp } from '../src/runs/train.ts';
import { tempDir } from './helpers/idx-files.ts';

// The recipes as they were when RECORDED's fingerprints were taken (the defaults have changed
// since: the MLP's learning rate, smoothing, average and flips; the CNN's Dirac initialisation).
const quick = { trainLimit: 2000, epochs: 2, hidden: 16, dropout: 0.3, seed: 123, learningRate: 0.001, labelSmoothing: 0, emaDecay: 0, patience: 5, augmentFlip: false, testFlip: false };
const withoutSeconds = (history: { seconds: number }[]) => history.map(({ seconds: _seconds, ...rest }) => rest);

test('the same seed gives the same history, weights and test accuracy; another seed does not', async () => {
  const [a, b, c] = [tempDir(), tempDir(), tempDir()];
  const first = await trainMlp(quick, { outDir: a });
  const second = await trainMlp(quick, { outDir: b });
  assert.deepEqual(withoutSeconds(second.history), withoutSeconds(first.history));
  assert.equal(second.test.accuracy, first.test.accuracy);
  assert.deepEqual(readFileSync(join(b, 'model.safetensors')), readFileSync(join(a, 'model.safetensors')));
  const other = await trainMlp({ ...quick, seed: 124 }, { outDir: c });
  assert.notDeepEqual(withoutSeconds(other.history), withoutSeconds(first.history));
});

test('the wasm backend with 2 threads repeats its run exactly too', async () => {
  const config = { ...quick, backend: 'wasm' as const, threads: 2 };
  const first = await trainMlp(config, { outDir: tempDir() });
  const second = await trainMlp(config, { outDir: tempDir() });
  assert.deepEqual(withoutSeconds(second.history), withoutSeconds(first.history));
  assert.equal(second.test.accuracy, first.test.accuracy);
});

// The weights that a seed trains, as SHA-256 prefixes of model.safetensors, recorded on one
// machine (Intel Xeon, AVX-512, 2 threads each). Any other machine must train the very same
// weights: the native matrix products sum in the same order at every vector width (so the AVX2
// width, as a Zen 3 would run them, is trained here too), and the rest of the native code and the
// WebAssembly kernels compute the same sums in the same order whatever the CPU. A change to the
// maths changes these too: record the new ones, on any machine.
const RECORDED: Record<'native' | 'wasm', { mlp: string; cnn: string }> = {
  native: { mlp: '803b594f9e904e8d', cnn: '403fced4c76c059e' },
  wasm: { mlp: 'f90bd9b708e24209', cnn: '33d1eec9e6bf29da' },
};
const weightsDigest = (dir: string) => createHash('sha256').update(readFileSync(join(dir, 'model.safetensors'))).digest('hex').slice(0, 16);
// Channels with a full block of 16 and remainders, so that every path of the Winograd transforms runs.
const smallCnn = { trainLimit: 1000, epochs: 1, channels: [16, 24, 8, 16, 8], features: 16, seed: 123, diracInit: false };

const fingerprints = async (backend: 'native' | 'wasm') => {
  const mlp = tempDir();
  await trainMlp({ ...quick, backend, threads: 2 }, { outDir: mlp });
  const cnn = tempDir();
  await trainCnn({ ...smallCnn, backend, threads: 2 }, { outDir: cnn });
  return { mlp: weightsDigest(mlp), cnn: weightsDigest(cnn) };
};

test('the wasm backend trains the weights recorded on another machine from the same seed', async () => {
  assert.deepEqual(await fingerprints('wasm'), RECORDED.wasm);
});

test('the native backend trains the weights recorded on another machine from the same seed, at each vector width', { skip: nativeBuildPresent() ? false : 'the native backend is not built here' }, async () => {
  const saved = process.env.FMNIST_GEMM_WIDTH;
  try {
    // The scalar width gives the same bits too (test/backends.test.ts), only too slowly to train here.
    for (const width of nativeGemmWidths().filter((width) => width !== 1)) {
      process.env.FMNIST_GEMM_WIDTH = String(width);
      assert.deepEqual(await fingerprints('native'), RECORDED.native, `vector width ${width}`);
    }
  } finally {
    if (saved === undefined) delete process.env.FMNIST_GEMM_WIDTH;
    else process.env.FMNIST_GEMM_WIDTH = saved;
  }
});
