import { randomBytes } from 'node:crypto';
import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { UserError } from '../errors.ts';

/** Why the system refused a write, in words, for the errors the disk gives. */
const REASONS: Record<string, string> = {
  ENOSPC: 'no space is left on the device (ENOSPC)',
  EDQUOT: 'the disk quota is exhausted (EDQUOT)',
  EACCES: 'permission denied (EACCES)',
  EPERM: 'the operation is not permitted (EPERM)',
  EROFS: 'the file system is read-only (EROFS)',
  ENOENT: 'its folder does not exist (ENOENT)',
  ENOTDIR: 'a part of its path is not a folder (ENOTDIR)',
  EIO: 'the device reported an input/output error (EIO)',
};

/** A file or folder that could not be written; the file it replaces, if any, is untouched. */
export class FileWriteError extends UserError {
  constructor(
    readonly path: string,
    /** The system's error code, e.g. ENOSPC. */
    readonly code: string,
    cause: unknown,
  ) {
    const detail = REASONS[code] ?? (cause instanceof Error ? cause.message : String(cause));
    super(`Cannot write ${path}: ${detail}`);
    this.name = 'FileWriteError';
    this.cause = cause;
  }
}

function writeError(path: string, error: unknown): FileWriteError {
  const code = (error as NodeJS.ErrnoException | null)?.code ?? 'EUNKNOWN';
  return new FileWriteError(path, code, error);
}

/**
 * Writes a file under a temporary name in the same folder, then renames it into place,
 * so a reader never sees a half-written file and a failed write (a full disk, a crash)
 * leaves the old one intact. A refused write throws FileWriteError naming the file.
 */
export function writeFileAtomic(path: string, data: string | Uint8Array): void {
  const temporary = `${path}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    writeFileSync(temporary, data);
    renameSync(temporary, path);
  } catch (error) {
    rmSync(temporary, { force: true });
    throw writeError(path, error);
  }
}

export function writeJsonAtomic(path: string, value: unknown): void {
  writeFileAtomic(path, `${JSON.stringify(value, null, 2)}\n`);
}

/** Creates a folder and its parents; a refused one throws FileWriteError. */
export function makeFolder(path: string): void {
  try {
    mkdirSync(path, { recursive: true });
  } catch (error) {
    throw writeError(path, error);
  }
}
