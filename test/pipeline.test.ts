import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { Interrupted, UserError } from '../src/errors.ts';
import { lockFolder } from '../src/io/lock.ts';
import { loadNpy } from '../src/io/npy.ts';
import { runPipeline } from '../src/runs/pipeline.ts';
import { FeaturesFolder } from '../src/runs/run-folder.ts';
import { evaluateSavedModel } from '../src/runs/evaluate.ts';
import { pixelExamples } from '../src/data/dataset.ts';
import { loadTestSet } from '../src/data/load.ts';
import { loadKernels } from '../src/kernels/index.ts';
import { extractFeatures } from '../src/models/features.ts';
import { loadModel } from '../src/models/model-file.ts';
import { REAL_DATA_DIR, tempDir } from './helpers/idx-files.ts';

// Tiny models: the whole pipeline in seconds, on the real data.
const overrides = {
  mlp: { trainLimit: 1000, epochs: 1, hidden: 16 },
  cnn: { trainLimit: 2000, epochs: 2, channels: [4, 4, 8, 8, 8], features: 16, convDropout: 0, featureDropout: 0, learningRate: 0.003 },
  featuresMlp: { epochs: 5, hidden: 32, dropout: 0, learningRate: 0.01 },
};

test('the pipeline trains all three models, saves the features and a summary; evaluate repeats each', { timeout: 300_000 }, async () => {
  const outDir = join(tempDir(), 'pipeline');
  const steps: string[] = [];
  const summary = await runPipeline({ seed: 3, overrides }, { outDir, onStep: (index, _total, title) => steps.push(`${index} ${title}`) });
  assert.deepEqual(steps, ['1 MLP on pixels', '2 CNN', '3 feature extraction', '4 MLP on CNN features']);

  const written = JSON.parse(readFileSync(join(outDir, 'summary.json'), 'utf8'));
  for (const key of ['mlp', 'cnn', 'cnnFeaturesMlp']) {
    assert.equal(typeof written.models[key].testAccuracy, 'number', key);
    assert.equal(typeof written.models[key].trainingSeconds, 'number', key);
    // Better than chance (10%), even for these tiny models.
    assert.ok(written.models[key].testAccuracy > 0.3, `${key}: ${written.models[key].testAccuracy}`);
  }
  assert.deepEqual(written.models.cnn.testAccuracy, summary.models.cnn.testAccuracy);

  const counts = { train: 2000, val: 12000, test: 10000 };
  for (const [part, count] of Object.entries(counts)) {
    const x = loadNpy(join(outDir, 'features', `${part}_x.npy`));
    const y = loadNpy(join(outDir, 'features', `${part}_y.npy`));
    assert.equal(x.dtype, 'float32');
    assert.deepEqual(x.shape, [count, 16]);
    assert.equal(y.dtype, 'uint8');
    assert.deepEqual(y.shape, [count]);
  }

  // The CNN flips at test time (the default), so each image's features are the mean of its own
  // and its mirror image's: checked against the CNN run on mirrored bytes, reversed here.
  assert.deepEqual(JSON.parse(readFileSync(join(outDir, 'features', 'features.json'), 'utf8')), { flipAverage: true });
  assert.equal(JSON.parse(readFileSync(join(outDir, 'cnn-features-mlp', 'model.json'), 'utf8')).input.flipAverage, true);
  const kernels = await loadKernels('auto');
  const cnn = loadModel(join(outDir, 'cnn'), kernels);
  const images = loadTestSet(REAL_DATA_DIR).data;
  const mirrored = new Uint8Array(images.pixels.length);
  for (let row = 0; row < images.count * 28; row++) {
    for (let x = 0; x < 28; x++) mirrored[row * 28 + x] = images.pixels[row * 28 + 27 - x];
  }
  const own = await extractFeatures(kernels, cnn.model, cnn.description.featureLayer!, pixelExamples(images));
  const ofMirror = await extractFeatures(kernels, cnn.model, cnn.description.featureLayer!, pixelExamples({ ...images, pixels: mirrored }));
  const saved = loadNpy(join(outDir, 'features', 'test_x.npy')).data as Float32Array;
  let largest = 0;
  for (let i = 0; i < own.length; i++) largest = Math.max(largest, Math.abs(saved[i] - (own[i] + ofMirror[i]) / 2));
  assert.ok(largest < 1e-5, `saved test features against the mean of the two: largest difference ${largest}`);
  assert.ok(own.some((value, i) => Math.abs(value - ofMirror[i]) > 1e-3), 'an image and its mirror image have different features');

  for (const model of ['mlp', 'cnn', 'cnn-features-mlp']) {
    const evaluation = await evaluateSavedModel(join(outDir, model));
    assert.equal(evaluation.test.accuracy, evaluation.recordedAccuracy, `${model}: evaluate repeats the recorded test accuracy`);
  }

  // Resuming a finished pipeline keeps every step and writes the same summary figures.
  const again: string[] = [];
  const resumed = await runPipeline({}, { outDir, resume: true, onStep: (index) => again.push(String(index)) });
  assert.deepEqual(again, ['1', '2', '3', '4']);
  assert.equal(resumed.models.cnnFeaturesMlp.testAccuracy, summary.models.cnnFeaturesMlp.testAccuracy);
  assert.ok(!existsSync(join(outDir, 'cnn', 'checkpoint')));
});

test('a pipeline interrupted in its CNN step resumes to the figures of one that never stopped; a second pipeline in its folder is refused', { timeout: 300_000 }, async () => {
  const clean = await runPipeline({ seed: 4, overrides }, { outDir: join(tempDir(), 'clean') });
  const outDir = join(tempDir(), 'interrupted');
  const controller = new AbortController();
  let cnnEpochs = 0;
  let step = 0;
  await assert.rejects(
    runPipeline(
      { seed: 4, overrides },
      {
        outDir,
        signal: controller.signal,
        onStep: (index) => (step = index),
        onProgress: (event) => {
          if (event.type === 'epoch-end' && step === 2 && ++cnnEpochs === 1) controller.abort(new Interrupted('SIGINT'));
        },
      },
    ),
    Interrupted,
  );
  assert.ok(existsSync(join(outDir, 'cnn', 'checkpoint', 'checkpoint.json')), 'the CNN step kept its checkpoint');
  // While another writer holds the folder, a pipeline is refused and changes nothing.
  const held = lockFolder(outDir, 'another writer');
  await assert.rejects(runPipeline({}, { outDir, resume: true }), (error) => error instanceof UserError && /is in use by process \d+ .*another writer/.test(error.message));
  held.release();
  const resumed = await runPipeline({}, { outDir, resume: true });
  for (const key of ['mlp', 'cnn', 'cnnFeaturesMlp'] as const) {
    assert.equal(resumed.models[key].testAccuracy, clean.models[key].testAccuracy, key);
    assert.equal(resumed.models[key].validationAccuracy, clean.models[key].validationAccuracy, key);
  }
});

test('features.json: a features folder without it holds each image\'s own features; a damaged one is a one-line error', () => {
  const folder = new FeaturesFolder(join(tempDir(), 'features'));
  assert.deepEqual(folder.description(), { flipAverage: false });
  folder.describe({ flipAverage: true });
  assert.deepEqual(folder.description(), { flipAverage: true });
  writeFileSync(join(folder.dir, 'features.json'), '{"flipAverage": "yes"}');
  assert.throws(() => folder.description(), (error) => error instanceof UserError && /features\.json does not hold a features description/.test(error.message));
});
