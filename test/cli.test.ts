import assert from 'node:assert/strict';
import { copyFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { DATA_FILES } from '../src/data/manifest.ts';
import { isOneLineError, runCli } from './helpers/cli.ts';
import { REAL_DATA_DIR, tempDir } from './helpers/idx-files.ts';

describe('fmnist train mlp, then fmnist evaluate', () => {
  const out = join(tempDir(), 'run');
  const train = runCli(['train', 'mlp', '--train-limit', '4000', '--epochs', '2', '--hidden', '32', '--lr', '0.005', '--seed', '5', '--out', out]);

  test('trains, prints the test figures and writes the run folder', () => {
    assert.equal(train.status, 0, train.stderr);
    assert.match(train.stdout, /test accuracy: \d+\.\d\d%/);
    assert.match(train.stdout, /precision +recall +f1-score +support/);
    assert.match(train.stdout, /Ankle boot/);
    // Not a terminal: progress comes as plain lines, one per epoch at least.
    assert.match(train.stderr, /epoch 2\/2: loss \d\.\d{4} acc .* val acc/);
    for (const file of ['config.json', 'history.json', 'metrics.json', 'model.json', 'model.safetensors']) {
      assert.ok(existsSync(join(out, file)), `${file} written`);
    }
    const config = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
    assert.equal(config.config.seed, 5);
    assert.equal(config.config.hidden, 32);
    const history = JSON.parse(readFileSync(join(out, 'history.json'), 'utf8'));
    assert.equal(history.length, 2);
    for (const key of ['trainLoss', 'trainAccuracy', 'valLoss', 'valAccuracy', 'seconds']) {
      assert.equal(typeof history[0][key], 'number', key);
    }
    const metrics = JSON.parse(readFileSync(join(out, 'metrics.json'), 'utf8'));
    // 4,000 images and 2 epochs give far better than chance (10%); the full run reaches 89%.
    assert.ok(metrics.test.accuracy > 0.7, `test accuracy ${metrics.test.accuracy}`);
    assert.equal(metrics.test.confusionMatrix.flat().reduce((a: number, b: number) => a + b, 0), 10_000);
    assert.equal(metrics.test.report.classes.length, 10);
    assert.equal(metrics.parameterCount, 784 * 32 + 32 + 32 * 10 + 10);
  });

  test('evaluate --model reproduces the recorded test figures', () => {
    const evaluation = runCli(['evaluate', '--model', out]);
    assert.equal(evaluation.status, 0, evaluation.stderr);
    const metrics = JSON.parse(readFileSync(join(out, 'metrics.json'), 'utf8'));
    assert.ok(evaluation.stdout.includes(`test accuracy: ${(metrics.test.accuracy * 100).toFixed(2)}%`));
    assert.match(evaluation.stdout, /matches the test accuracy recorded in metrics\.json/);
  });
});

describe('bad flags: one line, exit code 2', () => {
  const cases: [string, string[], RegExp][] = [
    ['negative learning rate', ['train', 'mlp', '--lr', '-1'], /--lr.*greater than 0/],
    ['not a number', ['train', 'mlp', '--hidden', 'abc'], /--hidden.*whole number/],
    ['unknown choice', ['train', 'mlp', '--optimizer', 'rmsprop'], /--optimizer.*adam, sgd/],
    ['impossible dropout', ['train', 'mlp', '--dropout', '1'], /--dropout.*up to \(not including\) 1/],
    ['unknown flag', ['train', 'mlp', '--bogus'], /unknown option '--bogus'/],
    ['no epochs for the pipeline\'s CNN', ['pipeline', '--cnn-epochs', '0'], /--cnn-epochs.*at least 1/],
    ['unknown command', ['fly'], /unknown command 'fly'/],
  ];
  for (const [name, args, message] of cases) {
    test(name, () => {
      const result = runCli(args);
      assert.equal(result.status, 2);
      assert.ok(isOneLineError(result.stderr), result.stderr);
      assert.match(result.stderr, message);
    });
  }
});

describe('bad data: one line naming the file, non-zero exit, no stack trace', () => {
  /** A data folder with the real files, one of them replaced. */
  function dataDirWith(name: string, bytes: Uint8Array): string {
    const dir = tempDir();
    for (const file of DATA_FILES) copyFileSync(join(REAL_DATA_DIR, `${file.name}.gz`), join(dir, `${file.name}.gz`));
    writeFileSync(join(dir, name), bytes);
    return dir;
  }
  const realLabels = () => gunzipSync(readFileSync(join(REAL_DATA_DIR, 'train-labels-idx1-ubyte.gz')));

  test('a truncated .gz', () => {
    const gz = readFileSync(join(REAL_DATA_DIR, 'train-labels-idx1-ubyte.gz'));
    const dir = dataDirWith('train-labels-idx1-ubyte.gz', gz.subarray(0, gz.length / 2));
    const result = runCli(['train', 'mlp', '--data-dir', dir]);
    assert.equal(result.status, 1);
    assert.ok(isOneLineError(result.stderr), result.stderr);
    assert.match(result.stderr, /^fmnist: error: .*train-labels-idx1-ubyte\.gz is not a valid gzip file/m);
  });

  test('a wrong magic number', () => {
    const labels = realLabels();
    labels[3] = 0x03;
    const dir = dataDirWith('train-labels-idx1-ubyte.gz', labels);
    const result = runCli(['data', '--data-dir', dir]);
    assert.equal(result.status, 1);
    assert.ok(isOneLineError(result.stderr), result.stderr);
    assert.match(result.stderr, /train-labels-idx1-ubyte\.gz has magic number 2051, but an IDX labels file starts with 2049/);
  });

  test('a label of 10', () => {
    const labels = realLabels();
    labels[8 + 12345] = 10;
    const dir = dataDirWith('train-labels-idx1-ubyte.gz', labels);
    const result = runCli(['data', '--data-dir', dir]);
    assert.equal(result.status, 1);
    assert.ok(isOneLineError(result.stderr), result.stderr);
    assert.match(result.stderr, /has label 10 at position 12345, but labels must be 0\.\.9/);
  });

  test('a model folder without a model', () => {
    const result = runCli(['evaluate', '--model', tempDir()]);
    assert.equal(result.status, 1);
    assert.ok(isOneLineError(result.stderr), result.stderr);
    assert.match(result.stderr, /holds no saved model/);
  });

  test('a diverging run stops with advice instead of training on NaN', () => {
    const out = join(tempDir(), 'run');
    const result = runCli(['train', 'mlp', '--lr', '1e30', '--train-limit', '500', '--epochs', '1', '--out', out]);
    assert.equal(result.status, 1);
    assert.match(result.stderr, /fmnist: error: Training diverged: the loss became (NaN|Infinity) .*lower the learning rate/);
    assert.ok(!existsSync(join(out, 'metrics.json')), 'no metrics of a diverged run');
  });
});

test('a switch that is on by default is turned off by its --no- form', () => {
  const out = join(tempDir(), 'cnn');
  const flags = ['--train-limit', '300', '--epochs', '1', '--channels', '4,4,8,8,8', '--features', '8', '--threads', '1', '--no-report'];
  const train = runCli(['train', 'cnn', ...flags, '--no-batch-norm', '--no-test-flip', '--no-augment-flip', '--out', out]);
  assert.equal(train.status, 0, train.stderr);
  const { config } = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
  assert.deepEqual([config.batchNorm, config.testFlip, config.augmentFlip], [false, false, false]);
  const model = JSON.parse(readFileSync(join(out, 'model.json'), 'utf8'));
  assert.ok(!model.architecture.layers.some((layer: { type: string }) => layer.type === 'batchnorm'), 'no normalisation layer');
});

test('fmnist data reports the source, the checksums and the per-class counts', () => {
  const result = runCli(['data']);
  assert.equal(result.status, 0, result.stderr);
  assert.equal((result.stdout.match(/^ok {6}/gm) ?? []).length, 4);
  assert.match(result.stdout, /^0 T-shirt\/top +4800 +1200 +1000$/m);
  assert.match(result.stdout, /^total +48000 +12000 +10000$/m);
});
