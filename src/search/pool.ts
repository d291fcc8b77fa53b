import { fork, type ChildProcess } from 'node:child_process';
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { UserError } from '../errors.ts';
import type { RungResult } from './journal.ts';
import type { TrialJob } from './trial.ts';
import type { FromWorker, ToWorker, WorkerSetup } from './worker.ts';

// worker.js beside this file once built, worker.ts when running from source under tsx.
const WORKER = fileURLToPath(new URL(`./worker${extname(fileURLToPath(import.meta.url))}`, import.meta.url));

/**
 * Runs jobs on `workers` child processes, each single-threaded (OpenBLAS too), so that
 * workers x threads never exceeds the cores. Each result is handed to `onResult` as it arrives
 * (the search journals it at once); `onStart` is called as each job is sent.
 */
export async function runJobs(
  jobs: TrialJob[],
  options: { workers: number; setup: WorkerSetup; onStart?: (job: TrialJob) => void; onResult: (result: RungResult) => void },
): Promise<void> {
  if (jobs.length === 0) return;
  const queue = [...jobs];
  const count = Math.max(1, Math.min(options.workers, jobs.length));
  const children: ChildProcess[] = [];
  try {
    await new Promise<void>((resolve, reject) => {
      let running = 0;
      let failed = false;
      const fail = (error: Error) => {
        if (failed) return;
        failed = true;
        reject(error);
      };
      const next = (child: ChildProcess) => {
        const job = queue.shift();
        if (!job) {
          if (running === 0) resolve();
          return;
        }
        running++;
        options.onStart?.(job);
        child.send({ type: 'job', job } satisfies ToWorker);
      };
      for (let i = 0; i < count; i++) {
        const child = fork(WORKER, [], {
          env: { ...process.env, OPENBLAS_NUM_THREADS: '1' },
          execArgv: process.execArgv,
          stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
        });
        children.push(child);
        child.on('message', (message: FromWorker) => {
          running--;
          if (message.type === 'error') {
            fail(message.userError ? new UserError(message.message) : new Error(`search worker failed: ${message.message}`));
            return;
          }
          try {
            options.onResult(message.result);
          } catch (error) {
            fail(error as Error);
            return;
          }
          next(child);
        });
        child.on('exit', (code, signal) => {
          if (!failed && (queue.length > 0 || running > 0)) fail(new Error(`a search worker stopped (${signal ?? `exit code ${code}`}) with jobs left`));
        });
        child.send({ type: 'setup', setup: options.setup } satisfies ToWorker);
        next(child);
      }
    });
  } finally {
    for (const child of children) if (child.connected) child.disconnect();
  }
}
