/**
 * The data files in a browser (the web app): the four files' bytes, fetched from `fmnist app` or
 * picked from disk, gunzipped with DecompressionStream and hashed with Web Crypto, then checked
 * by verify.ts exactly as the Node loader checks them. Uses only web APIs (Node 20 has them too).
 */
import { UserError } from '../errors.ts';
import { invalidGzip, isGzipped } from './idx.ts';
import type { DataFileKey } from './manifest.ts';
import type { LoadedData } from './split.ts';
import { TEST_FILES, TRAINING_FILES, verifiedPair, type DataFileContent, type LoadedSplit, type LoadOptions } from './verify.ts';

/** One file as given to the page: its name (for messages) and its bytes as stored, gzipped or not. */
export interface GivenFile {
  file: string;
  bytes: Uint8Array;
}

/** The content of a `.gz` file, or the bytes themselves when they are not gzipped. */
export async function gunzipInPage(given: GivenFile): Promise<Uint8Array> {
  if (!isGzipped(given.bytes)) return given.bytes;
  try {
    const stream = new Blob([given.bytes as Uint8Array<ArrayBuffer>]).stream().pipeThrough(new DecompressionStream('gzip'));
    return new Uint8Array(await new Response(stream).arrayBuffer());
  } catch (error) {
    throw invalidGzip(given.file, error instanceof Error ? error.message : String(error));
  }
}

/** SHA-256 of `bytes` as lowercase hex, by Web Crypto (offered on https:// and loopback pages only). */
export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  if (!globalThis.crypto?.subtle) {
    throw new UserError('This page cannot check the files against their SHA-256: browsers offer hashing only to pages on https:// or localhost; open it at such an address.');
  }
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>));
  return Array.from(digest, (byte) => byte.toString(16).padStart(2, '0')).join('');
}

/** A given file decompressed and hashed, ready for verify.ts. */
export async function fileContent(given: GivenFile): Promise<DataFileContent> {
  const bytes = await gunzipInPage(given);
  return { file: given.file, bytes, sha256: await sha256Hex(bytes) };
}

/** The training and test sets from the four given files, each checked as the CLI checks it. */
export async function loadGivenData(files: Record<DataFileKey, GivenFile>, options: LoadOptions = {}): Promise<{ training: LoadedSplit; test: LoadedSplit }> {
  const contents = {} as Record<DataFileKey, DataFileContent>;
  for (const key of Object.keys(files) as DataFileKey[]) contents[key] = await fileContent(files[key]);
  const read = (key: DataFileKey) => contents[key];
  return { training: verifiedPair(TRAINING_FILES, read, options), test: verifiedPair(TEST_FILES, read, options) };
}

/** The data as a job takes it (see job-core.ts): `source` says where the page got it. */
export function pageData(loaded: { training: LoadedSplit; test: LoadedSplit }, source: string): LoadedData {
  return { location: { dir: source, origin: 'page' }, training: loaded.training, loadTest: () => loaded.test };
}
