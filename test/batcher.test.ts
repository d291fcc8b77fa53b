import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Batcher } from '../src/serve/batcher.ts';

const CLASSES = ['a', 'b', 'c'];

/**
 * A classifier that answers each image with a one-hot row at (first pixel mod 3), records the
 * size of every pass, the most passes running at once, and can be told to fail.
 */
function fakeClassifier(delayMs = 0) {
  const state = { passes: [] as number[], running: 0, mostRunning: 0, fail: false };
  const classifier = {
    classNames: CLASSES,
    async classify(pixels: Uint8Array, count: number): Promise<Float32Array> {
      state.running++;
      state.mostRunning = Math.max(state.mostRunning, state.running);
      state.passes.push(count);
      if (delayMs > 0) await sleep(delayMs);
      state.running--;
      if (state.fail) throw new Error('forward pass failed');
      const out = new Float32Array(count * 3);
      for (let i = 0; i < count; i++) out[i * 3 + (pixels[i * 784] % 3)] = 1;
      return out;
    },
  };
  return { classifier, state };
}

/** `count` images whose first pixels are first, first + 1, ... */
function images(first: number, count: number): Uint8Array {
  const pixels = new Uint8Array(count * 784);
  for (let i = 0; i < count; i++) pixels[i * 784] = first + i;
  return pixels;
}

const predicted = (probabilities: Float32Array) => Array.from({ length: probabilities.length / 3 }, (_, i) => probabilities.indexOf(1, i * 3) - i * 3);

describe('Batcher', () => {
  test('requests submitted together share one pass, and each gets its own rows', async () => {
    const { classifier, state } = fakeClassifier();
    const batcher = new Batcher(classifier, { maxBatch: 64, maxWaitMs: 0 });
    const answers = await Promise.all([batcher.submit(images(0, 1), 1), batcher.submit(images(1, 2), 2), batcher.submit(images(5, 1), 1)]);
    assert.deepEqual(state.passes, [4]);
    assert.deepEqual(answers.map(predicted), [[0], [1, 2], [2]]);
  });

  test('one pass at a time; requests arriving during a pass form the next, up to maxBatch images', async () => {
    const { classifier, state } = fakeClassifier(20);
    const batcher = new Batcher(classifier, { maxBatch: 8, maxWaitMs: 0 });
    const first = batcher.submit(images(0, 1), 1);
    while (state.running === 0) await sleep(1);
    // While the first pass runs: 12 one-image requests, then one of 10 images (over maxBatch).
    const during = Array.from({ length: 12 }, (_, i) => batcher.submit(images(i, 1), 1));
    const big = batcher.submit(images(3, 10), 10);
    const answers = await Promise.all([first, ...during, big]);
    assert.equal(state.mostRunning, 1);
    // 1, then 8 of the 12, then the other 4 (the 10-image request does not fit beside them), then the 10 alone.
    assert.deepEqual(state.passes, [1, 8, 4, 10]);
    assert.deepEqual(answers.slice(1, 13).map((p) => predicted(p)[0]), Array.from({ length: 12 }, (_, i) => i % 3));
    assert.deepEqual(predicted(answers[13]), [0, 1, 2, 0, 1, 2, 0, 1, 2, 0]);
  });

  test('maxWait: a request waits for others that come within it', async () => {
    const { classifier, state } = fakeClassifier();
    const batcher = new Batcher(classifier, { maxBatch: 64, maxWaitMs: 300 });
    const first = batcher.submit(images(0, 1), 1);
    await sleep(10);
    const second = batcher.submit(images(1, 1), 1);
    await Promise.all([first, second]);
    assert.deepEqual(state.passes, [2]);
  });

  test('a full batch does not wait', async () => {
    const { classifier, state } = fakeClassifier();
    const batcher = new Batcher(classifier, { maxBatch: 2, maxWaitMs: 10_000 });
    const started = performance.now();
    await Promise.all([batcher.submit(images(0, 1), 1), batcher.submit(images(1, 1), 1)]);
    assert.ok(performance.now() - started < 1000);
    assert.deepEqual(state.passes, [2]);
  });

  test('a failed pass rejects its requests only; the next pass works', async () => {
    const { classifier, state } = fakeClassifier();
    const batcher = new Batcher(classifier, { maxBatch: 64, maxWaitMs: 0 });
    state.fail = true;
    const failed = await Promise.allSettled([batcher.submit(images(0, 1), 1), batcher.submit(images(1, 1), 1)]);
    assert.deepEqual(failed.map((result) => result.status), ['rejected', 'rejected']);
    state.fail = false;
    assert.deepEqual(predicted(await batcher.submit(images(2, 1), 1)), [2]);
    assert.equal(batcher.waiting, 0);
  });

  test('pixels that do not match the count are refused', async () => {
    const batcher = new Batcher(fakeClassifier().classifier, { maxBatch: 4, maxWaitMs: 0 });
    await assert.rejects(batcher.submit(new Uint8Array(700), 1), /1 images need 784 bytes, got 700/);
  });
});
