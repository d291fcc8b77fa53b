/**
 * A search worker: the process that trains a study's jobs on one machine (`fmnist search
 * worker`, and the local part of `fmnist search`). It starts trainer processes, one thread each,
 * and for each one claims a job from the study, writes the trial's stored checkpoint into the
 * trial's folder on this machine, hands the job to the trainer, stores each checkpoint the
 * trainer writes, and records the result; until no work is left. Meanwhile it sends the
 * study a heartbeat for all its jobs every few seconds; a job that another worker has taken
 * over (this one was silent for longer than the grace period) is stopped and dropped.
 *
 * Nothing is shared between machines but the database: a trial's folder here is only a working
 * copy, refreshed from the database at every claim.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { hostname } from 'node:os';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { DataOptions } from '../data/prepare.ts';
import { UserError } from '../errors.ts';
import { makeFolder, writeFileAtomic } from '../io/atomic.ts';
import { Channel, processEndpoint } from '../io/channel.ts';
import type { CnnConfig, MlpConfig } from '../runs/configs.ts';
import { decodeCheckpoint } from '../training/checkpoint.ts';
import type { SearchSettings } from './search.ts';
import { defaultConfig, trialConfig, type TrialParams } from './space.ts';
import type { JobLease, Study } from './study.ts';
import type { TrainerCheckpoint, TrainerRequest, TrainerResult, TrainerSetup } from './trainer-process.ts';
import { readModelFiles, TRIAL_CHECKPOINT, type RungResult, type TrialJob } from './trial.ts';

// trainer-process.js beside this file once built, .ts when running from source under tsx.
const TRAINER = fileURLToPath(new URL(`./trainer-process${extname(fileURLToPath(import.meta.url))}`, import.meta.url));

export interface WorkerOptions extends DataOptions {
  /** Trainer processes, one thread each; 0: train nothing, wait until the study is finished. */
  trainers: number;
  /** This machine's working copies of the trials: <workDir>/trials/<id>/ (checkpoint, model). */
  workDir: string;
  /** Milliseconds between claims while every job left runs on another worker (default 1000). */
  pollMs?: number;
  /** Stores a trial's checkpoint after an epoch when this many milliseconds have passed since the last one stored (default 10,000; 0: every epoch); always at the end of a rung. */
  checkpointEveryMs?: number;
  log?: (message: string) => void;
  onJob?: (event: WorkerEvent) => void;
}

/** A job started (no result yet) or recorded. */
export interface WorkerEvent {
  worker: string;
  lease: JobLease;
  result?: RungResult;
}

export interface WorkerReport {
  id: string;
  /** Results this worker recorded. */
  jobs: number;
  /** Jobs another worker took over from this one (heartbeats late by more than the grace period). */
  lost: number;
}

/** The training configuration every trial starts from: the model's defaults over the study's budget, seed and data. */
export function baseConfig(settings: SearchSettings): MlpConfig | CnnConfig {
  return {
    ...defaultConfig(settings.model),
    epochs: settings.maxEpochs,
    patience: 0,
    seed: settings.seed,
    trainLimit: settings.trainLimit,
    backend: settings.backend,
    threads: 1,
  };
}

/** A process of this machine is alive (EPERM: alive, another user's). */
function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The trainer of a job was stopped because another worker had taken the job over. */
class JobTakenOver extends Error {}

/** One trainer process, started on first use and again after it was stopped. */
class Trainer {
  private channel: Channel<TrainerRequest, TrainerResult, TrainerCheckpoint> | undefined;
  private child: ChildProcess | undefined;

  constructor(private readonly setup: TrainerSetup) {}

  private start(): Channel<TrainerRequest, TrainerResult, TrainerCheckpoint> {
    const child = fork(TRAINER, [], { execArgv: process.execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const channel = new Channel<TrainerRequest, TrainerResult, TrainerCheckpoint>(processEndpoint(child, 'a search trainer process'), {
      decodeError: (error) => (error.name === 'UserError' ? new UserError(error.message) : new Error(`search trainer failed: ${error.message}`)),
    });
    // A job sent before the kernels are loaded waits behind them; a failure to load fails it.
    channel.request({ type: 'start', setup: this.setup }).catch(() => {});
    this.child = child;
    return channel;
  }

  async run(job: TrialJob, onCheckpoint: (epochs: number) => void): Promise<{ result: RungResult; finished: boolean }> {
    const channel = (this.channel = this.channel && !this.channel.closed ? this.channel : this.start());
    const answer = await channel.request({ type: 'job', job }, { onEvent: ({ epochs }) => onCheckpoint(epochs) });
    return answer!;
  }

  /** Stops the job in progress at once (it fails with `reason`); the next job starts a fresh process. */
  stop(reason: Error): void {
    void this.channel?.close(reason);
    this.channel = undefined;
    this.child = undefined;
  }

  close(): void {
    if (this.child?.connected) this.child.disconnect();
    this.channel = undefined;
    this.child = undefined;
  }
}

/** Wakes the idle slots of this worker when one of its own slots records a result (it may have made promotions). */
class Waker {
  private waiters: (() => void)[] = [];

  wait(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.waiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  wakeAll(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }
}

/** Polls until nothing is left to train (a worker with no trainers), showing itself alive meanwhile. */
async function waitUntilFinished(study: Study, id: string, pollMs: number): Promise<void> {
  while (!(await study.finished())) {
    await study.heartbeat(id);
    await new Promise((resolve) => setTimeout(resolve, pollMs));
  }
}

/** Joins the study and trains its jobs until none is left; resolves when the study has no job waiting or running. */
export async function runWorker(study: Study, options: WorkerOptions): Promise<WorkerReport> {
  const host = hostname();
  const id = `${host}:${process.pid}:${randomBytes(3).toString('hex')}`;
  const log = options.log ?? (() => undefined);
  const pollMs = options.pollMs ?? 1000;
  const checkpointEveryMs = options.checkpointEveryMs ?? 10_000;
  await study.registerWorker({ id, host, pid: process.pid });
  const released = await study.releaseDeadLocalWorkers(host, isAlive);
  if (released > 0) log(`${released} job(s) left running by stopped processes of this machine are waiting again`);
  const report: WorkerReport = { id, jobs: 0, lost: 0 };
  if (options.trainers === 0) {
    await waitUntilFinished(study, id, pollMs);
    return report;
  }

  const params = new Map<number, TrialParams>((await study.trials()).map((trial) => [trial.id, trial.params]));
  const base = baseConfig(study.settings);
  const setup: TrainerSetup = { backend: study.settings.backend, data: { data: options.data, allowModifiedData: options.allowModifiedData } };
  // `claimed` numbers the claims, so that a heartbeat judges only the leases it can have seen.
  const slots = Array.from({ length: options.trainers }, () => ({ trainer: new Trainer(setup), lease: undefined as JobLease | undefined, claimed: 0 }));
  let claims = 0;
  const waker = new Waker();
  let failed = false;

  const jobFor = (lease: JobLease): TrialJob => ({
    trial: lease.trial,
    rung: lease.rung,
    model: study.settings.model,
    config: trialConfig(study.settings.model, base, params.get(lease.trial)!),
    stopAfterEpoch: study.rungs[lease.rung],
    dir: join(options.workDir, 'trials', String(lease.trial)),
    pipelineDir: study.settings.pipelineDir ?? undefined,
  });

  const takenOver = (slot: (typeof slots)[number], lease: JobLease) => {
    if (slot.lease !== lease) return;
    slot.lease = undefined;
    report.lost++;
    log(`trial ${lease.trial} rung ${lease.rung}: another worker has taken this job over (no heartbeat for ${study.graceMs / 1000} s); dropping it`);
    slot.trainer.stop(new JobTakenOver());
  };

  // One heartbeat for all this worker's jobs, every quarter of the grace period (at most 5 s).
  const heartbeatMs = Math.max(100, Math.min(5000, study.graceMs / 4));
  let beating = false;
  const heartbeat = setInterval(() => {
    if (beating) return;
    beating = true;
    const before = claims;
    study
      .heartbeat(id)
      .then((held) => {
        for (const slot of slots) {
          const lease = slot.lease;
          if (lease && slot.claimed <= before && !held.some((job) => job.trial === lease.trial && job.rung === lease.rung && job.attempt === lease.attempt)) takenOver(slot, lease);
        }
      })
      .catch((error: unknown) => log(`fmnist: warning: a heartbeat failed (${error instanceof Error ? error.message : String(error)}); retrying`))
      .finally(() => {
        beating = false;
      });
  }, heartbeatMs);

  /** Trains one claimed job and records its result (nothing, when another worker has taken the job over). */
  const train = async (slot: (typeof slots)[number], lease: JobLease): Promise<void> => {
    const job = jobFor(lease);
    const file = join(job.dir, TRIAL_CHECKPOINT);
    // The database holds the truth: this machine's copy may be older, newer, or another trial's past.
    const stored = await study.checkpoint(lease.trial);
    makeFolder(job.dir);
    if (stored) writeFileAtomic(file, stored.data);
    else if (existsSync(file)) rmSync(file);
    options.onJob?.({ worker: id, lease });

    // Uploads run one after another while the trainer goes on; a failure is kept for after the job.
    let uploads = Promise.resolve();
    let uploadError: unknown;
    let lastUpload = performance.now();
    let uploadedEpochs = lease.fromEpoch;
    const readCheckpoint = () => {
      const data = readFileSync(file);
      return { epochs: decodeCheckpoint(data, file).epochsDone, data };
    };
    const onCheckpoint = () => {
      if (performance.now() - lastUpload < checkpointEveryMs) return;
      lastUpload = performance.now();
      uploads = uploads.then(async () => {
        if (slot.lease !== lease) return;
        // The newest checkpoint in the file, whichever epoch told us.
        const checkpoint = readCheckpoint();
        if (checkpoint.epochs <= uploadedEpochs) return;
        if (!(await study.saveCheckpoint(lease, checkpoint.epochs, checkpoint.data))) takenOver(slot, lease);
        uploadedEpochs = checkpoint.epochs;
      }).catch((error: unknown) => {
        uploadError ??= error;
      });
    };

    let outcome: { result: RungResult; finished: boolean };
    try {
      outcome = await slot.trainer.run(job, onCheckpoint);
      await uploads;
      if (uploadError !== undefined) throw uploadError;
    } catch (error) {
      if (error instanceof JobTakenOver) return;
      throw error;
    }
    if (slot.lease !== lease) return;
    // The trainer is done: the heartbeats (which still cover the job until it is recorded) no longer watch it.
    slot.lease = undefined;
    const { result, finished } = outcome;
    // A paused trial's checkpoint goes with its result; a finished one's model instead.
    const extra = finished ? { files: readModelFiles(job.dir) } : result.failure === null ? { checkpoint: readCheckpoint() } : {};
    if (!(await study.record(lease, result, extra))) {
      report.lost++;
      log(`trial ${lease.trial} rung ${lease.rung}: another worker had taken this job over; its result here is dropped`);
      return;
    }
    report.jobs++;
    waker.wakeAll();
    options.onJob?.({ worker: id, lease, result });
  };

  const runSlot = async (slot: (typeof slots)[number]): Promise<void> => {
    while (!failed) {
      const claim = await study.claim(id);
      if (claim.type === 'done') return;
      if (claim.type === 'wait') {
        await waker.wait(pollMs);
        continue;
      }
      if (failed) {
        await study.release(claim.lease);
        return;
      }
      slot.lease = claim.lease;
      slot.claimed = ++claims;
      await train(slot, claim.lease);
    }
  };

  try {
    const outcomes = await Promise.allSettled(
      slots.map((slot) =>
        runSlot(slot).catch((error: unknown) => {
          // Stop the other slots' jobs too.
          if (!failed) {
            failed = true;
            for (const other of slots) other.trainer.stop(new JobTakenOver());
          }
          throw error;
        }),
      ),
    );
    const failure = outcomes.find((outcome) => outcome.status === 'rejected');
    if (failure) {
      // Let other workers have the jobs now, rather than after the grace period.
      await Promise.all(slots.map((slot) => (slot.lease ? study.release(slot.lease).catch(() => undefined) : undefined)));
      throw failure.reason;
    }
  } finally {
    clearInterval(heartbeat);
    for (const slot of slots) slot.trainer.close();
  }
  return report;
}
