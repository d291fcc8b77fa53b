import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A fresh temporary folder for one test. */
export function tempDir(prefix = 'fmnist-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** Bytes of an IDX images file with the given header values and `count * rows * cols` pixels. */
export function idxImages(count: number, rows = 28, cols = 28, magic = 2051, fill = (i: number) => i % 256): Uint8Array {
  const bytes = new Uint8Array(16 + count * rows * cols);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, magic);
  view.setUint32(4, count);
  view.setUint32(8, rows);
  view.setUint32(12, cols);
  for (let i = 16; i < bytes.length; i++) bytes[i] = fill(i);
  return bytes;
}

/** Bytes of an IDX labels file holding `labels`. */
export function idxLabels(labels: number[], magic = 2049): Uint8Array {
  const bytes = new Uint8Array(8 + labels.length);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, magic);
  view.setUint32(4, labels.length);
  bytes.set(labels, 8);
  return bytes;
}

export const REAL_DATA_DIR = '/usr/share/datasets/fashion-mnist';
