/**
 * A trainer process: receives trial jobs from its search worker over IPC, trains them one at a
 * time on one thread, and reports each checkpoint as it is written and each result. Training
 * blocks this process's event loop for a whole rung, which is why it is a process of its own:
 * the worker that started it stays free to send heartbeats and store the checkpoints in the
 * database. Started by worker.ts; not a command for users.
 */
import { join } from 'node:path';
import { UserError } from '../errors.ts';
import { answerRequests, parentProcess, remoteError } from '../io/channel.ts';
import { loadKernels, type BackendName } from '../kernels/index.ts';
import type { DataOptions } from '../data/prepare.ts';
import { singleFileCheckpointer } from '../training/checkpoint.ts';
import { TRIAL_CHECKPOINT, TrialRunner, type RungResult, type TrialJob } from './trial.ts';

export interface TrainerSetup {
  backend: BackendName | 'auto';
  data: DataOptions;
}

/** What a worker asks its trainer: start (load the kernels), then train jobs, one at a time. */
export type TrainerRequest = { type: 'start'; setup: TrainerSetup } | { type: 'job'; job: TrialJob };
/** A job's answer. finished: the trial trained all its epochs and its model is saved in its folder. */
export type TrainerResult = { result: RungResult; finished: boolean } | null;
/** While a job trains: its checkpoint file now holds this many epochs. */
export interface TrainerCheckpoint {
  epochs: number;
}

let runner: Promise<TrialRunner> | undefined;

answerRequests<TrainerRequest, TrainerResult, TrainerCheckpoint>(
  parentProcess(),
  async (request, emit) => {
    if (request.type === 'start') {
      // One thread per trainer: a worker starts one trainer per core.
      runner = loadKernels(request.setup.backend, { threads: 1 }).then((kernels) => new TrialRunner(kernels, request.setup.data));
      await runner;
      return { value: null };
    }
    if (!runner) throw new Error('job before start');
    // A small message, written at once even while the training that follows blocks the event loop.
    const checkpoint = singleFileCheckpointer(join(request.job.dir, TRIAL_CHECKPOINT), (epochs) => emit({ epochs }));
    return { value: await (await runner).run(request.job, checkpoint) };
  },
  // A bug's stack crosses too; a user's mistake is its sentence.
  (error) => ({ ...remoteError(error), message: error instanceof Error && !(error instanceof UserError) ? (error.stack ?? error.message) : remoteError(error).message }),
);

process.on('disconnect', () => process.exit(0));
