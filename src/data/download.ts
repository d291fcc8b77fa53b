import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { UserError } from '../errors.ts';
import { makeFolder, writeFileAtomic } from '../io/atomic.ts';
import { findDataFile } from './files.ts';
import { DATA_FILES, OFFICIAL_BASE_URL, type DataFileSpec } from './manifest.ts';

export interface DownloadOptions {
  /** Base address the four `.gz` files are fetched from. Default: Zalando's official one. */
  baseUrl?: string;
  /** Expected MD5 of each `.gz` by file name; default: the MD5s Zalando publishes. */
  expectedMd5?: Readonly<Record<string, string>>;
  /** Seconds to wait for one file before giving up. Default 120. */
  timeoutSeconds?: number;
  /** Called before each file is fetched. */
  onFile?: (name: string, url: string) => void;
}

/** A pointer to the three ways a user can provide the data, for error messages. */
export function howToProvideData(cacheDir: string): string {
  return (
    `Provide the data in one of three ways: pass --data-dir DIR (or set FASHION_MNIST_DIR) to a folder holding the four files; ` +
    `install the Debian package dataset-fashion-mnist; or put the four .gz files into ${cacheDir}.`
  );
}

/**
 * Downloads the official `.gz` files that `cacheDir` lacks. Each is checked against its
 * published MD5 while still in memory and only then written (under a temporary name,
 * renamed into place), so a corrupt or partial download never lands in the cache.
 */
export async function downloadFashionMnist(cacheDir: string, options: DownloadOptions = {}): Promise<void> {
  const baseUrl = options.baseUrl ?? OFFICIAL_BASE_URL;
  const timeoutMs = (options.timeoutSeconds ?? 120) * 1000;
  makeFolder(cacheDir);
  for (const file of DATA_FILES) {
    if (findDataFile(cacheDir, file.name) !== null) continue;
    const fileName = `${file.name}.gz`;
    const url = new URL(fileName, baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`).href;
    options.onFile?.(fileName, url);
    const bytes = await fetchBytes(url, timeoutMs, cacheDir);
    checkMd5(bytes, file, url, options.expectedMd5);
    writeFileAtomic(join(cacheDir, fileName), bytes);
  }
}

async function fetchBytes(url: string, timeoutMs: number, cacheDir: string): Promise<Uint8Array> {
  let response: Response;
  try {
    response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  } catch (error) {
    const cause = error instanceof Error && error.cause instanceof Error ? error.cause.message : String(error);
    throw new UserError(`Could not download ${url} (${cause}). ${howToProvideData(cacheDir)}`);
  }
  if (!response.ok) {
    throw new UserError(`Downloading ${url} failed with HTTP ${response.status}. ${howToProvideData(cacheDir)}`);
  }
  try {
    return new Uint8Array(await response.arrayBuffer());
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new UserError(`The download of ${url} broke off (${reason}); run the command again. ${howToProvideData(cacheDir)}`);
  }
}

function checkMd5(bytes: Uint8Array, file: DataFileSpec, url: string, expected?: Readonly<Record<string, string>>): void {
  const want = expected?.[file.name] ?? file.gzMd5;
  const got = createHash('md5').update(bytes).digest('hex');
  if (got !== want) {
    throw new UserError(
      `The file downloaded from ${url} has MD5 ${got}, not the published ${want}; it is corrupt and was not saved, so run the command again.`,
    );
  }
}
