/**
 * A trainer process: receives trial jobs from its search worker over IPC, trains them one at a
 * time on one thread, and reports each checkpoint as it is written and each result. Training
 * blocks this process's event loop for a whole rung, which is why it is a process of its own:
 * the worker that started it stays free to send heartbeats and store the checkpoints in the
 * database. Started by worker.ts; not a command for users.
 */
import { join } from 'node:path';
import { UserError } from '../errors.ts';
import { loadKernels, type BackendName } from '../kernels/index.ts';
import type { DataOptions } from '../data/prepare.ts';
import { singleFileCheckpointer } from '../training/checkpoint.ts';
import { TRIAL_CHECKPOINT, TrialRunner, type RungResult, type TrialJob } from './trial.ts';

export interface TrainerSetup {
  backend: BackendName | 'auto';
  data: DataOptions;
}

export type ToTrainer = { type: 'setup'; setup: TrainerSetup } | { type: 'job'; job: TrialJob };
export type FromTrainer =
  /** The trial's checkpoint file now holds this many epochs. */
  | { type: 'checkpoint'; epochs: number }
  /** finished: the trial trained all its epochs and its model is saved in its folder. */
  | { type: 'result'; result: RungResult; finished: boolean }
  | { type: 'error'; message: string; userError: boolean };

let runner: Promise<TrialRunner> | undefined;

function send(message: FromTrainer): void {
  process.send!(message);
}

process.on('message', (message: ToTrainer) => {
  if (message.type === 'setup') {
    // One thread per trainer: a worker starts one trainer per core.
    runner = loadKernels(message.setup.backend, { threads: 1 }).then((kernels) => new TrialRunner(kernels, message.setup.data));
    return;
  }
  (async () => {
    if (!runner) throw new Error('job before setup');
    // A small message, written at once even while the training that follows blocks the event loop.
    const checkpoint = singleFileCheckpointer(join(message.job.dir, TRIAL_CHECKPOINT), (epochs) => send({ type: 'checkpoint', epochs }));
    const { result, finished } = await (await runner).run(message.job, checkpoint);
    send({ type: 'result', result, finished });
  })().catch((error: unknown) => {
    send({ type: 'error', message: error instanceof Error ? (error instanceof UserError ? error.message : (error.stack ?? error.message)) : String(error), userError: error instanceof UserError });
  });
});

process.on('disconnect', () => process.exit(0));
