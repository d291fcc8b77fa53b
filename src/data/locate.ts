import { homedir } from 'node:os';
import { join } from 'node:path';
import { UserError } from '../errors.ts';
import { downloadFashionMnist, howToProvideData, type DownloadOptions } from './download.ts';
import { findDataFile } from './files.ts';
import { DATA_FILES, DEBIAN_DATA_DIR } from './manifest.ts';

/** Where the data was found, in the order the locator looks; `page`: given to the web app (fetched from `fmnist app` or picked from disk). */
export type DataOrigin = 'flag' | 'env' | 'debian' | 'cache' | 'download' | 'page';

export interface DataLocation {
  dir: string;
  origin: DataOrigin;
}

export interface LocateOptions {
  /** `--data-dir`: used alone when given. */
  dataDir?: string;
  /** Environment to read FASHION_MNIST_DIR and XDG_CACHE_HOME from. Default: process.env. */
  env?: NodeJS.ProcessEnv;
  /** Folder of the Debian package. Default: /usr/share/datasets/fashion-mnist. */
  systemDir?: string;
  /** User cache. Default: $XDG_CACHE_HOME/fashion-mnist, else ~/.cache/fashion-mnist. */
  cacheDir?: string;
  /** Download into the cache when no folder has the data; false forbids it. */
  download?: DownloadOptions | false;
}

export function defaultCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_CACHE_HOME && env.XDG_CACHE_HOME !== '' ? env.XDG_CACHE_HOME : join(homedir(), '.cache');
  return join(base, 'fashion-mnist');
}

function missingFiles(dir: string): string[] {
  return DATA_FILES.filter((file) => findDataFile(dir, file.name) === null).map((file) => file.name);
}

/**
 * Finds the folder holding the four Fashion-MNIST files: `--data-dir` or FASHION_MNIST_DIR;
 * then the Debian package's folder; then the user cache; else downloads into the cache.
 */
export async function locateData(options: LocateOptions = {}): Promise<DataLocation> {
  const env = options.env ?? process.env;
  const explicit: [string | undefined, DataOrigin, string][] = [
    [options.dataDir, 'flag', '--data-dir'],
    [env.FASHION_MNIST_DIR || undefined, 'env', 'FASHION_MNIST_DIR'],
  ];
  for (const [dir, origin, what] of explicit) {
    if (dir === undefined) continue;
    const missing = missingFiles(dir);
    if (missing.length > 0) {
      throw new UserError(
        `${what} points to ${dir}, which lacks ${missing.join(', ')} (plain or .gz); point it to the folder holding the four Fashion-MNIST files.`,
      );
    }
    return { dir, origin };
  }
  const systemDir = options.systemDir ?? DEBIAN_DATA_DIR;
  if (missingFiles(systemDir).length === 0) return { dir: systemDir, origin: 'debian' };
  const cacheDir = options.cacheDir ?? defaultCacheDir(env);
  if (missingFiles(cacheDir).length === 0) return { dir: cacheDir, origin: 'cache' };
  if (options.download === false) {
    throw new UserError(`Fashion-MNIST was not found. ${howToProvideData(cacheDir)}`);
  }
  await downloadFashionMnist(cacheDir, options.download ?? {});
  return { dir: cacheDir, origin: 'download' };
}
