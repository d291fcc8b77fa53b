import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { parseIdxImages, parseIdxLabels } from '../src/data/idx.ts';
import { decompressIfGzipped, loadTrainingSet } from '../src/data/load.ts';
import { UserError } from '../src/errors.ts';
import { idxImages, idxLabels, tempDir } from './helpers/idx-files.ts';

test('parses a valid images file and a valid labels file', () => {
  const images = parseIdxImages(idxImages(3), 'images');
  assert.equal(images.count, 3);
  assert.equal(images.pixels.length, 3 * 784);
  assert.equal(images.pixels[0], 16 % 256);
  assert.deepEqual([...parseIdxLabels(idxLabels([0, 9, 4]), 'labels')], [0, 9, 4]);
});

test('gunzips gzip content and passes other content through', () => {
  const raw = idxLabels([1, 2, 3]);
  assert.deepEqual([...decompressIfGzipped(gzipSync(raw), 'f')], [...raw]);
  assert.equal(decompressIfGzipped(raw, 'f'), raw);
});

function userErrorMatching(pattern: RegExp) {
  return (error: unknown) => error instanceof UserError && pattern.test(error.message) && !error.message.includes('\n');
}

test('rejects a wrong magic number, naming the file', () => {
  assert.throws(() => parseIdxImages(idxImages(2, 28, 28, 2049), 'x.idx'), userErrorMatching(/x\.idx has magic number 2049.*2051/));
  assert.throws(() => parseIdxLabels(idxLabels([1], 2051), 'y.idx'), userErrorMatching(/y\.idx has magic number 2051.*2049/));
});

test('rejects images that are not 28x28', () => {
  assert.throws(() => parseIdxImages(idxImages(2, 32, 32), 'big'), userErrorMatching(/32x32.*28x28/));
});

test('rejects a file whose length does not match its header', () => {
  const truncated = idxImages(3).subarray(0, 16 + 2 * 784);
  assert.throws(() => parseIdxImages(truncated, 'short'), userErrorMatching(/short is 1584 bytes long.*3 images.*truncated/));
  const extra = new Uint8Array([...idxLabels([1, 2]), 7]);
  assert.throws(() => parseIdxLabels(extra, 'long'), userErrorMatching(/long is 11 bytes long.*2 labels/));
  assert.throws(() => parseIdxLabels(new Uint8Array(5), 'tiny'), userErrorMatching(/too short/));
});

test('rejects a label outside 0..9', () => {
  assert.throws(() => parseIdxLabels(idxLabels([0, 10, 3]), 'lab'), userErrorMatching(/lab has label 10 at position 1/));
});

test('rejects a truncated gzip file', () => {
  const gz = gzipSync(idxLabels([1, 2, 3, 4, 5, 6, 7, 8]));
  assert.throws(() => decompressIfGzipped(gz.subarray(0, gz.length - 6), 'cut.gz'), userErrorMatching(/cut\.gz is not a valid gzip file/));
});

test('rejects image and label files of different lengths', () => {
  const dir = tempDir();
  writeFileSync(join(dir, 'train-images-idx3-ubyte'), idxImages(3));
  writeFileSync(join(dir, 'train-labels-idx1-ubyte'), idxLabels([1, 2]));
  assert.throws(() => loadTrainingSet(dir, { allowModified: true }), userErrorMatching(/holds 3 images but .* holds 2 labels/));
});

test('refuses content that differs from the official files unless allowed', () => {
  const dir = tempDir();
  writeFileSync(join(dir, 'train-images-idx3-ubyte'), idxImages(2));
  writeFileSync(join(dir, 'train-labels-idx1-ubyte'), idxLabels([1, 2]));
  assert.throws(() => loadTrainingSet(dir), userErrorMatching(/not the official Fashion-MNIST train-images-idx3-ubyte.*--allow-modified-data/));
  const loaded = loadTrainingSet(dir, { allowModified: true });
  assert.equal(loaded.data.count, 2);
  assert.deepEqual(
    loaded.checks.map((check) => check.status),
    ['modified', 'modified'],
  );
});
