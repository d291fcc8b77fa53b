import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const CLI = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));

export interface CliResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the fmnist CLI from source in a child process, as a user would run it. */
export function runCli(args: string[], env: NodeJS.ProcessEnv = {}): CliResult {
  const result = spawnSync(process.execPath, ['--import', 'tsx', CLI, ...args], {
    encoding: 'utf8',
    env: { ...process.env, ...env },
    timeout: 300_000,
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

/**
 * True when the error is one line, the last of stderr (progress lines may come before it),
 * and no stack trace was printed.
 */
export function isOneLineError(stderr: string): boolean {
  const lines = stderr.trimEnd().split('\n');
  const last = lines[lines.length - 1];
  return /^(fmnist: )?error: \S/.test(last) && lines.filter((line) => /error:/.test(line)).length === 1 && !lines.some((line) => /^\s+at /.test(line));
}
