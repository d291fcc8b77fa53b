/**
 * The web app's build for the tests and the benchmark: dist/web/ is built again (as
 * `npm run build:web` builds it) when it is missing or older than any of its sources, so a fresh
 * clone's `npm test` needs no extra step.
 */
import { existsSync, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
export const WEB_BUILD = join(ROOT, 'dist', 'web');
/** Held while one process builds, so that test files running side by side do not build over each other. */
const LOCK = join(ROOT, 'dist', '.web-build.lock');
/** A lock older than this was left by a build that died. */
const STALE_LOCK_MS = 180_000;
/** What the site is built from: the page, the engine's sources, the kernels, the build's settings. */
const SOURCES = ['web', 'src', join('dist', 'wasm'), 'vite.config.ts', 'package.json'];

function newestChange(path: string): number {
  if (!existsSync(path)) return 0;
  const stats = statSync(path);
  if (!stats.isDirectory()) return stats.mtimeMs;
  return Math.max(stats.mtimeMs, ...readdirSync(path).map((name) => newestChange(join(path, name))));
}

/** Whether dist/web/ exists and is newer than everything it is built from. */
export function webBuildIsCurrent(): boolean {
  const index = join(WEB_BUILD, 'index.html');
  if (!existsSync(index)) return false;
  const built = statSync(index).mtimeMs;
  return SOURCES.every((source) => newestChange(join(ROOT, source)) <= built);
}

/** Takes the build lock (a folder: creating it is atomic), waiting while another process holds it. */
async function lock(): Promise<void> {
  for (;;) {
    try {
      mkdirSync(LOCK, { recursive: false });
      return;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      if (Date.now() - statSync(LOCK).mtimeMs > STALE_LOCK_MS) rmSync(LOCK, { recursive: true, force: true });
      else await sleep(200);
    }
  }
}

/** Builds dist/web/ with Vite unless it is current; returns its folder. */
export async function ensureWebBuild(log: (message: string) => void = () => {}): Promise<string> {
  if (webBuildIsCurrent()) return WEB_BUILD;
  mkdirSync(join(ROOT, 'dist'), { recursive: true });
  await lock();
  try {
    // Another process may have built it while this one waited.
    if (webBuildIsCurrent()) return WEB_BUILD;
    log('building the web app (dist/web) with vite');
    const { build } = await import('vite');
    await build({ configFile: join(ROOT, 'vite.config.ts'), logLevel: 'warn' });
    return WEB_BUILD;
  } finally {
    rmSync(LOCK, { recursive: true, force: true });
  }
}
