import { closeSync, existsSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { UserError } from '../errors.ts';
import { FileWriteError, makeFolder } from './atomic.ts';

/** The lock file a writing process holds in its folder. */
export const LOCK_FILE = '.fmnist-lock';

interface LockOwner {
  pid: number;
  host: string;
  /** What holds it: `fmnist train mlp`, say. */
  command: string;
  since: string;
}

export interface FolderLock {
  release(): void;
}

function sleep(milliseconds: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, milliseconds);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: the process exists but belongs to someone else.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function readOwner(path: string): LockOwner | null {
  try {
    const owner = JSON.parse(readFileSync(path, 'utf8')) as LockOwner;
    return Number.isInteger(owner.pid) ? owner : null;
  } catch {
    return null;
  }
}

/**
 * Holds `dir` for this process: the lock file is created atomically (exclusive create), naming
 * the process. A second writer is refused with a sentence naming the holder; the lock of a
 * process that is no longer running (on this machine) is taken over, and `log` says so. The
 * lock goes when released, and when the process exits.
 */
export function lockFolder(dir: string, command: string, log?: (message: string) => void): FolderLock {
  makeFolder(dir);
  const path = join(dir, LOCK_FILE);
  const me: LockOwner = { pid: process.pid, host: hostname(), command, since: new Date().toISOString() };
  for (let attempt = 0; ; attempt++) {
    let fd: number;
    try {
      fd = openSync(path, 'wx');
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== 'EEXIST') throw new FileWriteError(path, code ?? 'EUNKNOWN', error);
      const owner = readOwner(path);
      const stale = owner !== null && owner.host === me.host && !alive(owner.pid);
      if (owner && !stale) {
        throw new UserError(
          `${dir} is in use by process ${owner.pid} on ${owner.host} (${owner.command}, since ${owner.since}); wait for it to finish, or choose another --out (if that process is gone, delete ${path}).`,
        );
      }
      // A lock file being written this instant reads as unreadable: look again before taking it over.
      if (!owner && attempt < 3) {
        sleep(50);
        continue;
      }
      if (attempt >= 5) throw new UserError(`${dir} is locked by ${path}, which cannot be taken over; delete it if no fmnist process writes there.`);
      log?.(owner ? `${dir} was locked by process ${owner.pid} (${owner.command}), which is no longer running; taking the lock over` : `${path} is unreadable; taking the lock over`);
      rmSync(path, { force: true });
      continue;
    }
    try {
      writeSync(fd, JSON.stringify(me));
    } finally {
      closeSync(fd);
    }
    break;
  }
  let held = true;
  const release = () => {
    if (!held) return;
    held = false;
    process.off('exit', release);
    // Only our own lock: one taken over after we lost it stays.
    if (existsSync(path) && readOwner(path)?.pid === process.pid) rmSync(path, { force: true });
  };
  process.on('exit', release);
  return { release };
}
