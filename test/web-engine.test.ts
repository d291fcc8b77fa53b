/**
 * The web app's engine pieces, checked in Node against the CLI's own: the data read as the page
 * reads it (DecompressionStream, Web Crypto), the in-memory checkpoints of stop and resume, the
 * model files as bytes, the .npy decoder, and the stand-in preprocessing.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { gunzipSync, gzipSync } from 'node:zlib';
import { loadGivenData, pageData, type GivenFile } from '../src/data/browser.ts';
import { loadTestSet, loadTrainingSet } from '../src/data/load.ts';
import { DATA_FILES, type DataFileKey } from '../src/data/manifest.ts';
import { UserError } from '../src/errors.ts';
import { decodeNpy } from '../src/io/npy-format.ts';
import { loadNpy, saveNpy } from '../src/io/npy.ts';
import { jsKernels } from '../src/kernels/index.ts';
import { loadModel, saveModel } from '../src/models/model-file.ts';
import { encodeModel, modelFromWeights } from '../src/models/model-format.ts';
import { mlpArchitecture } from '../src/models/mlp.ts';
import { Sequential } from '../src/models/sequential.ts';
import { Rng } from '../src/random/rng.ts';
import { forkStreams } from '../src/random/streams.ts';
import { DEFAULT_MLP_CONFIG, type MlpConfig } from '../src/runs/configs.ts';
import { imageJobData, recipe, trainJob, type JobSpec } from '../src/runs/job-core.ts';
import { MemoryCheckpointer } from '../web/checkpoint.ts';
import { REAL_DATA_DIR, tempDir } from './helpers/idx-files.ts';

const realFiles = (): Record<DataFileKey, GivenFile> =>
  Object.fromEntries(DATA_FILES.map((spec) => [spec.key, { file: `${spec.name}.gz`, bytes: new Uint8Array(readFileSync(join(REAL_DATA_DIR, `${spec.name}.gz`))) }])) as Record<DataFileKey, GivenFile>;

test('the page reads the four files to the same images, labels and checksums as the CLI', async () => {
  const page = await loadGivenData(realFiles());
  const training = loadTrainingSet(REAL_DATA_DIR);
  const testSet = loadTestSet(REAL_DATA_DIR);
  assert.equal(page.training.data.count, 60_000);
  assert.ok(Buffer.from(page.training.data.pixels).equals(Buffer.from(training.data.pixels)), 'training pixels');
  assert.ok(Buffer.from(page.training.data.labels).equals(Buffer.from(training.data.labels)), 'training labels');
  assert.ok(Buffer.from(page.test.data.pixels).equals(Buffer.from(testSet.data.pixels)), 'test pixels');
  assert.deepEqual(
    [...page.training.checks, ...page.test.checks].map(({ sha256, status }) => ({ sha256, status })),
    [...training.checks, ...testSet.checks].map(({ sha256, status }) => ({ sha256, status })),
  );
  assert.ok(page.training.checks.every((check) => check.status === 'verified'));
  const data = pageData(page, 'picked');
  assert.deepEqual(data.location, { dir: 'picked', origin: 'page' });
  assert.equal(data.loadTest({}).data.count, 10_000);
});

test('the page refuses a modified or truncated file with the sentence the CLI prints', async () => {
  const files = realFiles();
  // A labels file whose header is intact but whose first label changed: parsed, then refused by its checksum.
  const raw = readFileSync(join(REAL_DATA_DIR, 'train-labels-idx1-ubyte.gz'));
  const plain = gunzipSync(raw);
  plain[8] = (plain[8] + 1) % 10;
  const modified = { ...files, trainLabels: { file: 'train-labels-idx1-ubyte.gz', bytes: gzipSync(plain) } };
  await assert.rejects(loadGivenData(modified), (error: unknown) => error instanceof UserError && /train-labels-idx1-ubyte\.gz is not the official Fashion-MNIST train-labels-idx1-ubyte \(SHA-256 [0-9a-f]{64}, expected bad3541b/.test(error.message));
  const loaded = await loadGivenData(modified, { allowModified: true });
  assert.deepEqual(loaded.training.checks.map((check) => check.status), ['verified', 'modified']);

  const dir = tempDir();
  for (const spec of DATA_FILES) writeFileSync(join(dir, `${spec.name}.gz`), spec.key === 'trainLabels' ? gzipSync(plain) : files[spec.key].bytes);
  assert.throws(() => loadTrainingSet(dir), (error: unknown) => error instanceof UserError && error.message.includes('is not the official Fashion-MNIST train-labels-idx1-ubyte (SHA-256'));

  const truncated = { ...files, trainLabels: { file: 'cut.gz', bytes: raw.subarray(0, raw.length - 6) } };
  await assert.rejects(loadGivenData(truncated), (error: unknown) => error instanceof UserError && /^cut\.gz is not a valid gzip file/.test(error.message));
});

let pageLoaded: ReturnType<typeof loadGivenData> | undefined;

/** A small MLP job on the page's data path, trained with the reference kernels. */
async function trainSmall(config: MlpConfig, checkpoint: MemoryCheckpointer, signal?: AbortSignal, onEpoch?: () => void) {
  const loaded = pageData(await (pageLoaded ??= loadGivenData(realFiles())), 'test');
  const spec: JobSpec = { kind: 'mlp', config };
  const streams = forkStreams(config.seed);
  const data = imageJobData(config, streams, { loaded });
  const plan = recipe(spec, data, streams);
  return trainJob(spec, plan, streams, {
    kernels: jsKernels,
    checkpoint,
    signal,
    onProgress: (event) => {
      if (event.type === 'epoch-end') onEpoch?.();
    },
  });
}

test('a run stopped mid-epoch and resumed from the in-memory checkpoint ends with the weights of an unbroken run', { timeout: 120_000 }, async () => {
  const config: MlpConfig = { ...DEFAULT_MLP_CONFIG, epochs: 3, trainLimit: 1200, hidden: 16, batchSize: 16, seed: 5 };
  const whole = await trainSmall(config, new MemoryCheckpointer());

  const checkpoint = new MemoryCheckpointer();
  const controller = new AbortController();
  // Abort once the first epoch is saved: the second is abandoned between two batches.
  await assert.rejects(trainSmall(config, checkpoint, controller.signal, () => controller.abort()));
  assert.equal(checkpoint.latest?.epochsDone, 1);
  const resumed = await trainSmall(config, checkpoint);

  assert.deepEqual(resumed.fit.history.map((r) => r.valAccuracy), whole.fit.history.map((r) => r.valAccuracy));
  assert.deepEqual(await resumed.model.readValues(), await whole.model.readValues());
});

test('the in-memory checkpoint keeps copies: training on after a save does not change it', () => {
  const values = Float32Array.from([1, 2]);
  const m = Float32Array.from([3]);
  const order = Int32Array.from([1, 0]);
  const checkpoint = new MemoryCheckpointer();
  const history = [{ epoch: 1, trainLoss: 1, trainAccuracy: 0, valLoss: 1, valAccuracy: 0.5, learningRate: 0.1, seconds: 1 }];
  checkpoint.save({ epochsDone: 1, values, bestValues: values, bestEpoch: 1, bestAccuracy: 0.5, optimizer: { steps: 4, buffers: [m] }, rngs: [], order, history });
  values[0] = 9;
  m[0] = 9;
  order[0] = 9;
  history[0].valAccuracy = 0.9;
  const saved = checkpoint.load()!;
  assert.deepEqual([...saved.values, ...saved.bestValues, ...saved.optimizer.buffers[0], ...saved.order], [1, 2, 1, 2, 3, 1, 0]);
  assert.equal(saved.history[0].valAccuracy, 0.5);
  // What load hands out is a copy too: fit restores from it into live buffers.
  saved.values[1] = 7;
  assert.equal(checkpoint.load()!.values[1], 2);
});

test('.npy: the page decodes what the CLI saves', () => {
  const path = join(tempDir(), 'p.npy');
  const data = Float32Array.from({ length: 30 }, (_, i) => i / 7);
  saveNpy(path, { dtype: 'float32', shape: [3, 10], data });
  const decoded = decodeNpy(readFileSync(path), path);
  assert.deepEqual(decoded, loadNpy(path));
  assert.throws(() => decodeNpy(new Uint8Array(20), 'x.npy'), /x\.npy is not a \.npy file/);
});


test('encodeModel and modelFromWeights round-trip the files saveModel writes', async () => {
  const model = new Sequential(jsKernels, mlpArchitecture({ hidden: 6, dropout: 0, init: 'he' }));
  model.initialize(Rng.fromSeed(4));
  const details = { kind: 'mlp', input: { type: 'pixels' as const, scale: 1 / 255 }, classNames: ['a'] };
  const dir = tempDir();
  await saveModel(dir, model, details);
  const files = await encodeModel(model, details);
  assert.ok(Buffer.from(files.weights).equals(readFileSync(join(dir, 'model.safetensors'))), 'the same weights file');
  assert.deepEqual(files.description, JSON.parse(readFileSync(join(dir, 'model.json'), 'utf8')));
  const rebuilt = modelFromWeights(files.description, files.weights, jsKernels, { dir, weightsPath: 'w' });
  assert.deepEqual(await rebuilt.readValues(), await loadModel(dir, jsKernels).model.readValues());
});
