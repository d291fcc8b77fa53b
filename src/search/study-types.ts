/**
 * The rows of a study as its parts read and write them (study.ts and its parts: leases,
 * promotions, results, reads), and what each part knows of the study it serves.
 */
import type { SearchSettings } from './settings.ts';
import type { TrialParams } from './space.ts';
import type { Storage } from './storage.ts';
import type { RungResult } from './trial.ts';

/** What a part of a study knows of it: where it lives, its name and settings, and the rungs they make. */
export interface StudyContext {
  readonly storage: Storage;
  readonly name: string;
  readonly settings: SearchSettings;
  /** Heartbeats older than this (milliseconds) mark a job as abandoned. */
  readonly graceMs: number;
  /** Epochs trained by the end of each rung. */
  readonly rungs: number[];
  /** Synchronous halving's number of trials at each rung. */
  readonly sizes: number[];
}

/** A trial of a study: its number and hyperparameters. */
export interface TrialRow {
  id: number;
  params: TrialParams;
}

/** A job claimed by a worker: train `trial` up to rung `rung`, from the checkpoint at `fromEpoch` epochs. */
export interface JobLease {
  trial: number;
  rung: number;
  /** The job's claims so far, this one included: the lease is (worker, attempt). */
  attempt: number;
  worker: string;
  fromEpoch: number;
}

export type JobState = 'waiting' | 'running' | 'done';

export interface JobRow {
  trial: number;
  rung: number;
  state: JobState;
  /** The worker of the last claim (null: never claimed, or given back). */
  worker: string | null;
  /** Claims so far: 1 for a job trained by one worker without interruption. */
  attempt: number;
  /** The checkpointed epoch the last claim started from. */
  fromEpoch: number | null;
  heartbeatAt: number | null;
}

export interface WorkerRow {
  id: string;
  host: string;
  pid: number;
  software: string;
  startedAt: number;
  heartbeatAt: number;
  /** Results it recorded. */
  jobsDone: number;
}

/** A result as recorded: with the worker that recorded it. */
export interface RecordedResult extends RungResult {
  worker: string;
}

/** A claim's answer: a job, nothing to do now (jobs are running elsewhere), or nothing left at all. */
export type Claim = { type: 'job'; lease: JobLease } | { type: 'wait' } | { type: 'done' };

/** A file of a finished trial's model folder, as stored. */
export interface StoredFile {
  name: string;
  data: Uint8Array;
}

/** A job whose heartbeat is older than this is given to another worker (--grace, in seconds, changes it). */
export const DEFAULT_GRACE_MS = 60_000;
