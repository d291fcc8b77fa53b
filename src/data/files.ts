import { existsSync } from 'node:fs';
import { join } from 'node:path';

/** The path of a data file in `dir`: the `.gz` when present, else the uncompressed file, else null. */
export function findDataFile(dir: string, name: string): string | null {
  for (const candidate of [join(dir, `${name}.gz`), join(dir, name)]) {
    if (existsSync(candidate)) return candidate;
  }
  return null;
}
