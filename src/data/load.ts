import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { UserError } from '../errors.ts';
import { findDataFile } from './files.ts';
import { decompressIfGzipped, parseIdxImages, parseIdxLabels } from './idx.ts';
import { dataFile, type DataFileKey } from './manifest.ts';

/** Images with their labels, kept compact: one byte a pixel. */
export interface LabelledImages {
  count: number;
  /** [count, 784] row-major, 0..255. Scaled to [0, 1] only when a batch is assembled. */
  pixels: Uint8Array;
  /** [count], class indices 0..9. */
  labels: Uint8Array;
}

export type ChecksumStatus = 'verified' | 'modified';

export interface FileCheck {
  file: string;
  sha256: string;
  status: ChecksumStatus;
}

export interface LoadOptions {
  /** Load files whose content differs from the official release instead of refusing them. */
  allowModified?: boolean;
}

export interface LoadedSplit {
  data: LabelledImages;
  checks: FileCheck[];
}

/** The official training set (60,000 images). */
export function loadTrainingSet(dir: string, options: LoadOptions = {}): LoadedSplit {
  return loadPair(dir, 'trainImages', 'trainLabels', options);
}

/** The official test set (10,000 images): for final evaluation only. */
export function loadTestSet(dir: string, options: LoadOptions = {}): LoadedSplit {
  return loadPair(dir, 'testImages', 'testLabels', options);
}

function loadPair(dir: string, imagesKey: DataFileKey, labelsKey: DataFileKey, options: LoadOptions): LoadedSplit {
  const images = readVerified(dir, imagesKey, options, parseIdxImages);
  const labels = readVerified(dir, labelsKey, options, parseIdxLabels);
  const parsedImages = images.value;
  const parsedLabels = labels.value;
  if (parsedImages.count !== parsedLabels.length) {
    throw new UserError(
      `${images.check.file} holds ${parsedImages.count} images but ${labels.check.file} holds ${parsedLabels.length} labels; use files from the same release.`,
    );
  }
  return {
    data: { count: parsedImages.count, pixels: parsedImages.pixels, labels: parsedLabels },
    checks: [images.check, labels.check],
  };
}

/**
 * Reads and decompresses one file, validates its IDX structure, then compares the SHA-256
 * of the decompressed content with the official one. Structure is checked first because
 * its errors say more precisely what is wrong than a checksum mismatch does.
 */
function readVerified<T>(
  dir: string,
  key: DataFileKey,
  options: LoadOptions,
  parse: (bytes: Uint8Array, fileName: string) => T,
): { value: T; check: FileCheck } {
  const spec = dataFile(key);
  const path = findDataFile(dir, spec.name);
  if (path === null) {
    throw new UserError(`${dir} lacks ${spec.name} (plain or .gz); put the four Fashion-MNIST files there.`);
  }
  let raw: Uint8Array;
  try {
    raw = readFileSync(path);
  } catch (error) {
    throw new UserError(`Cannot read ${path}: ${error instanceof Error ? error.message : String(error)}.`);
  }
  const bytes = decompressIfGzipped(raw, path);
  const value = parse(bytes, path);
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  const status: ChecksumStatus = sha256 === spec.sha256 ? 'verified' : 'modified';
  if (status === 'modified' && !options.allowModified) {
    throw new UserError(
      `${path} is not the official Fashion-MNIST ${spec.name} (SHA-256 ${sha256}, expected ${spec.sha256}); replace it, or pass --allow-modified-data to load it knowingly.`,
    );
  }
  return { value, check: { file: path, sha256, status } };
}
