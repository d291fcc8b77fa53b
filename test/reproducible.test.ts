import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { trainMlp } from '../src/runs/train.ts';
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
