import { readFileSync } from 'node:fs';
import { UserError } from '../errors.ts';
import { writeFileAtomic } from './atomic.ts';
import { decodeNpy, encodeNpy, type NpyArray } from './npy-format.ts';

export { decodeNpy, encodeNpy, isNpy, type NpyArray } from './npy-format.ts';

export function saveNpy(path: string, array: NpyArray): void {
  writeFileAtomic(path, encodeNpy(array));
}

/** Reads a .npy file of float32 or uint8 values in C order, as written by encodeNpy or numpy.save. */
export function loadNpy(path: string): NpyArray {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (error) {
    throw new UserError(`Cannot read ${path}: ${error instanceof Error ? error.message : String(error)}.`);
  }
  return decodeNpy(bytes, path);
}
