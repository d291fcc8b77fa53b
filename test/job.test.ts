import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { UserError } from '../src/errors.ts';
import { loadKernels } from '../src/kernels/index.ts';
import { DEFAULT_CNN_CONFIG, type CnnConfig } from '../src/runs/configs.ts';
import { openTrainingRun, RunFolder } from '../src/runs/run-folder.ts';
import { trainCnn, trainMlp } from '../src/runs/train.ts';
import { TRIAL_CHECKPOINT, TrialRunner } from '../src/search/trial.ts';
import { singleFileCheckpointer } from '../src/training/checkpoint.ts';
import { tempDir } from './helpers/idx-files.ts';

// One thread, as search workers train; a small CNN on 300 images for one epoch.
const kernels = await loadKernels('auto', { threads: 1 });
const config: CnnConfig = { ...DEFAULT_CNN_CONFIG, epochs: 1, trainLimit: 300, channels: [8, 8, 8, 8, 8], features: 16, threads: 1, patience: 0 };

async function trialWeights(given: CnnConfig): Promise<Buffer> {
  const dir = tempDir();
  await new TrialRunner(kernels, {}).run({ trial: 0, rung: 0, model: 'cnn', config: given, stopAfterEpoch: given.epochs, dir }, singleFileCheckpointer(join(dir, TRIAL_CHECKPOINT)));
  return readFileSync(join(dir, 'model.safetensors'));
}

test('a CNN search trial trains with the recipe of fmnist train cnn, augmentation included: the same weights', async () => {
  assert.equal(config.augmentShift, 1, 'the default CNN recipe shifts the images');
  const outDir = tempDir();
  await trainCnn(config, { outDir, kernels });
  const trained = readFileSync(join(outDir, 'model.safetensors'));
  assert.deepEqual(await trialWeights(config), trained);
  // The check can fail: without the augmentation, the same trial ends with other weights.
  assert.notDeepEqual(await trialWeights({ ...config, augmentShift: 0 }), trained);
});

test('a run folder refuses a second run, and a resumed run takes the configuration it was started with', async () => {
  const outDir = tempDir();
  await trainMlp({ epochs: 1, trainLimit: 500, hidden: 8, threads: 1 }, { outDir, kernels });
  assert.throws(() => openTrainingRun(outDir, {}, false), (error) => error instanceof UserError && /already holds a run/.test(error.message));
  assert.throws(() => openTrainingRun(tempDir(), {}, true), (error) => error instanceof UserError && /no run to resume/.test(error.message));
  const { config: resumed } = openTrainingRun(outDir, { hidden: 99 }, true);
  assert.equal((resumed as { hidden: number }).hidden, 8);
  const folder = new RunFolder(outDir);
  assert.equal(folder.state(), 'done');
  assert.equal(folder.readMetrics().kind, 'mlp');
  assert.equal(folder.readHistory().length, 1);
  // The split it trained on: 500 training and 12,000 validation images of the 60,000.
  const split = folder.readSplit(60_000);
  assert.ok(split);
  assert.equal(split.train.length, 500);
  assert.equal(split.validation.length, 12_000);
});
