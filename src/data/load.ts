import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { UserError } from '../errors.ts';
import { findDataFile } from './files.ts';
import { invalidGzip, isGzipped } from './idx.ts';
import { dataFile, type DataFileKey } from './manifest.ts';
import { TEST_FILES, TRAINING_FILES, verifiedPair, type DataFileContent, type LoadedSplit, type LoadOptions } from './verify.ts';

export type { ChecksumStatus, FileCheck, LabelledImages, LoadedSplit, LoadOptions } from './verify.ts';

/** Returns the IDX bytes of a file's content, gunzipping when it starts with the gzip signature. */
export function decompressIfGzipped(bytes: Uint8Array, fileName: string): Uint8Array {
  if (!isGzipped(bytes)) return bytes;
  try {
    return gunzipSync(bytes);
  } catch (error) {
    throw invalidGzip(fileName, error instanceof Error ? error.message : String(error));
  }
}

/** The official training set (60,000 images). */
export function loadTrainingSet(dir: string, options: LoadOptions = {}): LoadedSplit {
  return verifiedPair(TRAINING_FILES, (key) => readDataFile(dir, key), options);
}

/** The official test set (10,000 images): for final evaluation only. */
export function loadTestSet(dir: string, options: LoadOptions = {}): LoadedSplit {
  return verifiedPair(TEST_FILES, (key) => readDataFile(dir, key), options);
}

/** Reads one file of `dir` (the .gz, else the plain one), decompresses it and hashes the content. */
function readDataFile(dir: string, key: DataFileKey): DataFileContent {
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
  return { file: path, bytes, sha256: createHash('sha256').update(bytes).digest('hex') };
}
