import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { copyFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { UserError } from '../src/errors.ts';
import { DEFAULT_CNN_CONFIG, type CnnConfig } from '../src/runs/configs.ts';
import { rungEpochs, rungSizes } from '../src/search/halving.ts';
import { evaluateBest, runSearch } from '../src/search/search.ts';
import { searchSettings } from '../src/search/settings.ts';
import { DEFAULT_SPACES, gridParams, sampleParams, trialConfig, validateSpace } from '../src/search/space.ts';
import { openStorage, SQLITE_FILE } from '../src/search/storage.ts';
import { Study, type JobRow, type RecordedResult } from '../src/search/study.ts';
import { runPipeline } from '../src/runs/pipeline.ts';
import { runCli } from './helpers/cli.ts';
import { REAL_DATA_DIR, tempDir } from './helpers/idx-files.ts';
import { Rng } from './helpers/random.ts';

test('successive halving: rungs a factor apart ending at the full budget, keeping the best third', () => {
  assert.deepEqual(rungEpochs(3, 30, 3), [3, 10, 30]);
  assert.deepEqual(rungEpochs(1, 9, 3), [1, 3, 9]);
  assert.deepEqual(rungEpochs(2, 20, 3), [2, 7, 20]);
  assert.deepEqual(rungEpochs(5, 5, 3), [5]);
  assert.deepEqual(rungSizes(30, 3, 3), [30, 10, 3]);
  assert.deepEqual(rungSizes(4, 3, 3), [4, 1, 1]);
});

test('a search space is validated, sampled reproducibly within its bounds, and enumerated as a grid', () => {
  const space = DEFAULT_SPACES.mlp;
  const a = Array.from({ length: 50 }, (_, i) => i).map(((rng) => () => sampleParams(space, rng))(Rng.fromSeed(1)));
  const b = Array.from({ length: 50 }, (_, i) => i).map(((rng) => () => sampleParams(space, rng))(Rng.fromSeed(1)));
  assert.deepEqual(a, b);
  for (const params of a) {
    assert.ok((params.learningRate as number) >= 3e-4 && (params.learningRate as number) <= 1e-2);
    assert.ok([64, 128, 256, 512].includes(params.hidden as number));
    assert.ok((params.dropout as number) >= 0 && (params.dropout as number) <= 0.5);
  }
  const grid = gridParams({ learningRate: { type: 'log-uniform', min: 1e-4, max: 1e-2, gridPoints: 3 }, hidden: { type: 'choice', values: [32, 64] } });
  assert.deepEqual(grid, [
    { learningRate: 1e-4, hidden: 32 },
    { learningRate: 1e-4, hidden: 64 },
    { learningRate: 1e-3, hidden: 32 },
    { learningRate: 1e-3, hidden: 64 },
    { learningRate: 1e-2, hidden: 32 },
    { learningRate: 1e-2, hidden: 64 },
  ]);
  const cnn = trialConfig('cnn', { ...DEFAULT_CNN_CONFIG, channels: [32, 32, 64, 64, 128] }, { widthMultiplier: 0.5, learningRate: 0.002 }) as CnnConfig;
  assert.deepEqual(cnn.channels, [16, 16, 32, 32, 64]);
  assert.equal(cnn.learningRate, 0.002);

  const bad: [unknown, RegExp][] = [
    [{ momentum: { type: 'choice', values: [0.9] } }, /"momentum" is not a parameter of the mlp search/],
    [{ hidden: { type: 'choice', values: [64.5] } }, /hidden: value 64.5 must be a whole number/],
    [{ learningRate: { type: 'log-uniform', min: 0, max: 1 } }, /min 0 must be a number greater than 0|log-uniform needs "min" above 0/],
    [{ dropout: { type: 'uniform', min: 0.5, max: 0.1 } }, /needs numbers "min" <= "max"/],
    [{ dropout: { type: 'normal' } }, /"type" must be/],
    [{}, /names no parameter/],
  ];
  for (const [space, message] of bad) assert.throws(() => validateSpace('mlp', space, 'space.json'), (error: Error) => error instanceof UserError && message.test(error.message));
});

/** A data folder with the real training files and garbage in place of the test files. */
function dataWithoutTestImages(): string {
  const dir = tempDir();
  for (const name of ['train-images-idx3-ubyte.gz', 'train-labels-idx1-ubyte.gz']) copyFileSync(join(REAL_DATA_DIR, name), join(dir, name));
  for (const name of ['t10k-images-idx3-ubyte.gz', 't10k-labels-idx1-ubyte.gz']) writeFileSync(join(dir, name), 'not the test set');
  return dir;
}

const tiny = { trials: 5, minEpochs: 1, maxEpochs: 3, trainLimit: 1000, seed: 7 };

test('a search reads no test image: it completes with the test files replaced by garbage', { timeout: 300_000 }, async () => {
  const dataDir = dataWithoutTestImages();
  const outDir = join(tempDir(), 'search');
  const result = await runSearch(searchSettings('mlp', tiny), { outDir, data: { dataDir }, workers: 2 });
  assert.equal(result.trials.length, 5);
  assert.equal(result.best.epochs, 3, 'the best trial trained every epoch');
  assert.ok(result.best.valAccuracy! > 0.5, `best validation accuracy ${result.best.valAccuracy}`);
  assert.ok(existsSync(join(result.bestDir, 'model.safetensors')));
  assert.equal(readFileSync(join(outDir, 'trials.csv'), 'utf8').trim().split('\n').length, 6);
  // The final test evaluation is what reads the test files, and it does so only when asked.
  await assert.rejects(evaluateBest(outDir, result, { data: { dataDir } }), (error: Error) => error instanceof UserError && /t10k/.test(error.message));
});

/** What a search folder's search.sqlite holds, read as another process would; null before the study exists. */
async function recorded(outDir: string): Promise<{ results: RecordedResult[]; jobs: JobRow[] } | null> {
  if (!existsSync(join(outDir, SQLITE_FILE))) return null;
  const storage = await openStorage(join(outDir, SQLITE_FILE));
  try {
    const study = await Study.open(storage);
    return { results: await study.reads.results(), jobs: await study.reads.jobs() };
  } catch (error) {
    if (error instanceof UserError) return null;
    throw error;
  } finally {
    await storage.close();
  }
}

const CLI = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));
const searchArgs = (outDir: string) => ['search', 'mlp', '--trials', '8', '--min-epochs', '1', '--max-epochs', '4', '--train-limit', '3000', '--seed', '5', '--out', outDir, '--no-report'];

test('a killed search run again continues: no finished trial is lost or repeated, and the results match an unbroken search', { timeout: 600_000 }, async () => {
  const outDir = join(tempDir(), 'search');
  const child = spawn(process.execPath, ['--import', 'tsx', CLI, ...searchArgs(outDir)], { stdio: 'ignore' });
  // Kill it (without warning) once a few rung results are recorded.
  let before: { trial: number; rung: number }[] = [];
  const deadline = Date.now() + 240_000;
  while (Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    before = ((await recorded(outDir))?.results ?? []).map(({ trial, rung }) => ({ trial, rung }));
    if (before.length >= 4) break;
  }
  child.kill('SIGKILL');
  await new Promise((resolve) => child.once('exit', resolve));
  assert.ok(before.length >= 4 && before.length < 10, `killed mid-search after ${before.length} of 10 results`);

  const again = runCli(searchArgs(outDir));
  assert.equal(again.status, 0, again.stderr);
  const { results, jobs } = (await recorded(outDir))!;
  // Rungs at 1 and 4 epochs: 8 trials, then the best 2; every (trial, rung) recorded once.
  const keys = results.map((r) => `${r.trial}/${r.rung}`);
  assert.equal(new Set(keys).size, keys.length, 'no result recorded twice');
  assert.equal(results.length, 8 + 2);
  for (const { trial, rung } of before) {
    assert.equal(jobs.find((job) => job.trial === trial && job.rung === rung)!.attempt, 1, `trial ${trial} rung ${rung} finished before the kill and was not run again`);
  }

  const unbroken = join(tempDir(), 'search');
  assert.equal(runCli(searchArgs(unbroken)).status, 0);
  const figures = (dir: string) => JSON.parse(readFileSync(join(dir, 'trials.json'), 'utf8')).trials.map((t: { trial: number; valAccuracy: number; epochs: number }) => [t.trial, t.valAccuracy, t.epochs]);
  assert.deepEqual(figures(outDir), figures(unbroken));
});

test('fmnist search refuses another search\'s folder and bad flags with one line', () => {
  const outDir = tempDir();
  const first = runCli(['search', 'mlp', '--trials', '2', '--max-epochs', '1', '--train-limit', '500', '--out', outDir, '--no-report']);
  assert.equal(first.status, 0, first.stderr);
  const other = runCli(['search', 'mlp', '--trials', '3', '--max-epochs', '1', '--train-limit', '500', '--out', outDir]);
  assert.equal(other.status, 1);
  assert.match(other.stderr, /holds a search with other settings/);
  const features = runCli(['search', 'features-mlp', '--out', tempDir()]);
  assert.equal(features.status, 1);
  assert.match(features.stderr, /needs --pipeline DIR/);
  const model = runCli(['search', 'resnet']);
  assert.equal(model.status, 2);
});

test('the CNN and the MLP on CNN features can be searched too, and their best models evaluated', { timeout: 300_000 }, async () => {
  const root = tempDir();
  const cnnSpace = { widthMultiplier: { type: 'choice' as const, values: [0.125, 0.25] }, learningRate: { type: 'log-uniform' as const, min: 1e-3, max: 3e-3 } };
  const cnn = await runSearch(searchSettings('cnn', { space: cnnSpace, trials: 2, minEpochs: 1, maxEpochs: 1, trainLimit: 500 }), { outDir: join(root, 'cnn'), workers: 2 });
  assert.equal(cnn.trials.length, 2);
  const cnnModel = JSON.parse(readFileSync(join(cnn.bestDir, 'model.json'), 'utf8'));
  assert.equal(cnnModel.kind, 'cnn');
  assert.ok(typeof cnnModel.featureLayer === 'number');
  const cnnFinal = await evaluateBest(join(root, 'cnn'), cnn);
  assert.ok(cnnFinal.test.accuracy > 0.2, `CNN test accuracy ${cnnFinal.test.accuracy}`);

  // A tiny pipeline provides the features and their CNN.
  const pipelineDir = join(root, 'pipeline');
  await runPipeline(
    { seed: 2, overrides: { mlp: { trainLimit: 500, epochs: 1, hidden: 8 }, cnn: { trainLimit: 1000, epochs: 1, channels: [4, 4, 8, 8, 8], features: 16 }, featuresMlp: { epochs: 1 } } },
    { outDir: pipelineDir },
  );
  const features = await runSearch(searchSettings('features-mlp', { pipelineDir, trials: 3, minEpochs: 1, maxEpochs: 2 }), { outDir: join(root, 'features'), workers: 2 });
  const final = await evaluateBest(join(root, 'features'), features);
  const model = JSON.parse(readFileSync(join(features.bestDir, 'model.json'), 'utf8'));
  assert.equal(model.kind, 'cnn-features-mlp');
  assert.equal(model.input.type, 'cnn-features');
  // The extractor is found from the trial's folder, and evaluating again gives the journaled figures.
  assert.ok(final.test.accuracy > 0.2, `features MLP test accuracy ${final.test.accuracy}`);
  assert.deepEqual(await evaluateBest(join(root, 'features'), features), final);
});

test('a diverging trial is recorded as such, and a search where every trial diverges says what to do', { timeout: 120_000 }, async () => {
  // A learning rate so large that the weights overflow float32 within the first batches.
  const space = { learningRate: { type: 'choice' as const, values: [1e35] }, optimizer: { type: 'choice' as const, values: ['sgd'] } };
  const outDir = join(tempDir(), 'search');
  await assert.rejects(
    runSearch(searchSettings('mlp', { space, trials: 2, includeDefault: false, maxEpochs: 1, trainLimit: 500 }), { outDir, workers: 1 }),
    (error: Error) => error instanceof UserError && /No trial trained to the last rung without diverging/.test(error.message),
  );
  const { results } = (await recorded(outDir))!;
  assert.equal(results.length, 2);
  for (const result of results) {
    assert.equal(result.valAccuracy, null);
    assert.match(result.failure ?? '', /diverged/);
  }
});
