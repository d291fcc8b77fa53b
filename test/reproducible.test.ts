import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { nativeBuildPresent } from '../src/kernels/native/node.ts';
import { trainCnn, trainMlp } from '../src/runs/train.ts';
import { tempDir } from './helpers/idx-files.ts';

const quick = { trainLimit: 2000, epochs: 2, hidden: 16, dropout: 0.3, seed: 123 };
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
// machine (AMD Zen 5, AVX-512, 2 threads each). Any other machine must train the very same
// weights: the native backend names the same OpenBLAS kernels everywhere (openBlasCoreFor), and
// its own code and the WebAssembly kernels compute the same sums in the same order whatever
// the vector width. A change to the maths changes these too: record the new ones, on any machine.
const RECORDED: Record<'native' | 'wasm', { mlp: string; cnn: string }> = {
  native: { mlp: '96b29db9803ac9fd', cnn: 'e73e752446a1e58c' },
  wasm: { mlp: 'f90bd9b708e24209', cnn: '33d1eec9e6bf29da' },
};
const weightsDigest = (dir: string) => createHash('sha256').update(readFileSync(join(dir, 'model.safetensors'))).digest('hex').slice(0, 16);
// Channels with a full block of 16 and remainders, so that every path of the Winograd transforms runs.
const smallCnn = { trainLimit: 1000, epochs: 1, channels: [16, 24, 8, 16, 8], features: 16, seed: 123 };

for (const backend of ['native', 'wasm'] as const) {
  const skip = backend === 'native' && !nativeBuildPresent() ? 'the native backend is not built here' : false;
  test(`the ${backend} backend trains the weights recorded on another machine from the same seed`, { skip }, async () => {
    const mlp = tempDir();
    await trainMlp({ ...quick, backend, threads: 2 }, { outDir: mlp });
    const cnn = tempDir();
    await trainCnn({ ...smallCnn, backend, threads: 2 }, { outDir: cnn });
    assert.deepEqual({ mlp: weightsDigest(mlp), cnn: weightsDigest(cnn) }, RECORDED[backend]);
  });
}
