import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadTestSet, loadTrainingSet } from '../src/data/load.ts';
import { locateData } from '../src/data/locate.ts';
import { DATA_FILES } from '../src/data/manifest.ts';
import { stratifiedSample, stratifiedSplit } from '../src/data/split.ts';
import { Rng } from '../src/random/rng.ts';

// The real data set, found as a user's run finds it (CI installs Debian's dataset-fashion-mnist).
const location = await locateData({ download: false });
const training = loadTrainingSet(location.dir);

function perClass(labels: Uint8Array): number[] {
  const counts = new Array<number>(10).fill(0);
  for (const label of labels) counts[label]++;
  return counts;
}

test('the official training and test sets load with their known counts and checksums', () => {
  const testSet = loadTestSet(location.dir);
  assert.equal(training.data.count, 60_000);
  assert.equal(training.data.pixels.length, 60_000 * 784);
  assert.equal(testSet.data.count, 10_000);
  assert.deepEqual(perClass(training.data.labels), new Array(10).fill(6000));
  assert.deepEqual(perClass(testSet.data.labels), new Array(10).fill(1000));
  const checks = [...training.checks, ...testSet.checks];
  assert.deepEqual(
    checks.map((check) => check.sha256),
    DATA_FILES.map((file) => file.sha256),
  );
  assert.ok(checks.every((check) => check.status === 'verified'));
  // First label of each official file (known from the release): Ankle boot, Ankle boot.
  assert.equal(training.data.labels[0], 9);
  assert.equal(testSet.data.labels[0], 9);
});

test('the split is 48,000 / 12,000, stratified, disjoint, and fixed by the seed', () => {
  const a = stratifiedSplit(training.data, 0.2, Rng.fromSeed(7));
  assert.equal(a.train.count, 48_000);
  assert.equal(a.validation.count, 12_000);
  assert.deepEqual(perClass(a.train.labels), new Array(10).fill(4800));
  assert.deepEqual(perClass(a.validation.labels), new Array(10).fill(1200));

  const again = stratifiedSplit(training.data, 0.2, Rng.fromSeed(7));
  assert.deepEqual(again.validation.pixels, a.validation.pixels);
  const other = stratifiedSplit(training.data, 0.2, Rng.fromSeed(8));
  assert.notDeepEqual(other.validation.pixels, a.validation.pixels);

  // Disjoint and complete: the images of both parts together are the whole training set.
  const key = (pixels: Uint8Array, i: number) => Buffer.from(pixels.subarray(i * 784, (i + 1) * 784)).toString('base64');
  const all = new Map<string, number>();
  for (let i = 0; i < training.data.count; i++) {
    const k = key(training.data.pixels, i);
    all.set(k, (all.get(k) ?? 0) + 1);
  }
  for (const part of [a.train, a.validation]) {
    for (let i = 0; i < part.count; i++) {
      const k = key(part.pixels, i);
      const left = all.get(k) ?? 0;
      assert.ok(left > 0, 'an image appears in the split more often than in the training set');
      all.set(k, left - 1);
    }
  }
  assert.ok([...all.values()].every((left) => left === 0));
});

test('a stratified sample keeps every class in its share', () => {
  const sample = stratifiedSample(training.data, 1000, Rng.fromSeed(1));
  assert.equal(sample.count, 1000);
  assert.deepEqual(perClass(sample.labels), new Array(10).fill(100));
});
