/**
 * A search worker process: receives trial jobs from its parent over IPC, runs them one at a time
 * on one thread, and sends each result back. Started by pool.ts; not a command for users.
 */
import { UserError } from '../errors.ts';
import { loadKernels, type BackendName } from '../kernels/index.ts';
import type { DataOptions } from '../data/prepare.ts';
import type { RungResult } from './journal.ts';
import { TrialRunner, type TrialJob } from './trial.ts';

export interface WorkerSetup {
  backend: BackendName | 'auto';
  data: DataOptions;
}

export type ToWorker = { type: 'setup'; setup: WorkerSetup } | { type: 'job'; job: TrialJob };
export type FromWorker = { type: 'result'; result: RungResult } | { type: 'error'; message: string; userError: boolean };

let runner: Promise<TrialRunner> | undefined;

function send(message: FromWorker): void {
  process.send!(message);
}

process.on('message', (message: ToWorker) => {
  if (message.type === 'setup') {
    // One thread per worker: the pool starts one worker per core.
    runner = loadKernels(message.setup.backend, { threads: 1 }).then((kernels) => new TrialRunner(kernels, message.setup.data));
    return;
  }
  (async () => {
    if (!runner) throw new Error('job before setup');
    send({ type: 'result', result: await (await runner).run(message.job) });
  })().catch((error: unknown) => {
    send({ type: 'error', message: error instanceof Error ? (error instanceof UserError ? error.message : (error.stack ?? error.message)) : String(error), userError: error instanceof UserError });
  });
});

process.on('disconnect', () => process.exit(0));
