/**
 * The data files' checks that need no file access: the IDX structure, the checksum against the
 * official one, images and labels from the same release. The Node loader (load.ts) and the web
 * app's (browser.ts) read, gunzip and hash the files their own way, then both come here, so a
 * file is accepted or refused with the same sentence wherever it is read.
 */
import { UserError } from '../errors.ts';
import { parseIdxImages, parseIdxLabels } from './idx.ts';
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

/** One data file as read: its name for messages, its decompressed content and that content's SHA-256 (hex). */
export interface DataFileContent {
  file: string;
  bytes: Uint8Array;
  sha256: string;
}

/**
 * Parses one file's content and compares its SHA-256 with the official one. Structure is
 * checked first because its errors say more precisely what is wrong than a checksum mismatch does.
 */
function verified<T>(key: DataFileKey, content: DataFileContent, options: LoadOptions, parse: (bytes: Uint8Array, fileName: string) => T): { value: T; check: FileCheck } {
  const spec = dataFile(key);
  const value = parse(content.bytes, content.file);
  const status: ChecksumStatus = content.sha256 === spec.sha256 ? 'verified' : 'modified';
  if (status === 'modified' && !options.allowModified) {
    throw new UserError(
      `${content.file} is not the official Fashion-MNIST ${spec.name} (SHA-256 ${content.sha256}, expected ${spec.sha256}); replace it, or pass --allow-modified-data to load it knowingly.`,
    );
  }
  return { value, check: { file: content.file, sha256: content.sha256, status } };
}

/**
 * An images file and its labels file (the training or the test pair), checked and paired.
 * `read` gives a file's content; the labels file is read only once the images file has passed.
 */
export function verifiedPair(
  keys: { images: DataFileKey; labels: DataFileKey },
  read: (key: DataFileKey) => DataFileContent,
  options: LoadOptions = {},
): LoadedSplit {
  const images = verified(keys.images, read(keys.images), options, parseIdxImages);
  const labels = verified(keys.labels, read(keys.labels), options, parseIdxLabels);
  const count = images.value.count;
  if (count !== labels.value.length) {
    throw new UserError(`${images.check.file} holds ${count} images but ${labels.check.file} holds ${labels.value.length} labels; use files from the same release.`);
  }
  return {
    data: { count, pixels: images.value.pixels, labels: labels.value },
    checks: [images.check, labels.check],
  };
}

export const TRAINING_FILES = { images: 'trainImages', labels: 'trainLabels' } as const satisfies Record<string, DataFileKey>;
export const TEST_FILES = { images: 'testImages', labels: 'testLabels' } as const satisfies Record<string, DataFileKey>;
