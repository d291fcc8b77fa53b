/**
 * What a study holds, read without changing anything: its trials, results, jobs and workers
 * (for the status and the reports), the database's clock, and the stored checkpoints, model
 * files and final figures.
 */
import type { EpochRecord } from '../training/fit.ts';
import type { TrialParams } from './space.ts';
import type { JobRow, JobState, RecordedResult, StoredFile, StudyContext, TrialRow, WorkerRow } from './study-types.ts';
import type { FinalEvaluation } from './summary.ts';

export class StudyReads {
  constructor(private readonly study: StudyContext) {}

  async trials(): Promise<TrialRow[]> {
    const rows = await this.study.storage.query<{ id: number; params: string }>('SELECT id, params FROM trials WHERE study = $1 ORDER BY id', [this.study.name]);
    return rows.map((row) => ({ id: row.id, params: JSON.parse(row.params) as TrialParams }));
  }

  async results(): Promise<RecordedResult[]> {
    const rows = await this.study.storage.query<{
      trial: number;
      rung: number;
      epochs: number;
      val_accuracy: number | null;
      val_loss: number | null;
      best_epoch: number | null;
      seconds: number;
      history: string;
      failure: string | null;
      worker: string;
    }>('SELECT trial, rung, epochs, val_accuracy, val_loss, best_epoch, seconds, history, failure, worker FROM results WHERE study = $1 ORDER BY rung, trial', [this.study.name]);
    return rows.map((row) => ({
      trial: row.trial,
      rung: row.rung,
      epochs: row.epochs,
      valAccuracy: row.val_accuracy,
      valLoss: row.val_loss,
      bestEpoch: row.best_epoch,
      seconds: row.seconds,
      history: JSON.parse(row.history) as EpochRecord[],
      failure: row.failure,
      worker: row.worker,
    }));
  }

  async jobs(): Promise<JobRow[]> {
    const rows = await this.study.storage.query<{ trial: number; rung: number; state: JobState; worker: string | null; attempt: number; from_epoch: number | null; heartbeat_at: number | null }>(
      'SELECT trial, rung, state, worker, attempt, from_epoch, heartbeat_at FROM jobs WHERE study = $1 ORDER BY rung, trial',
      [this.study.name],
    );
    return rows.map((row) => ({
      trial: row.trial,
      rung: row.rung,
      state: row.state,
      worker: row.worker,
      attempt: row.attempt,
      fromEpoch: row.from_epoch === null ? null : Number(row.from_epoch),
      heartbeatAt: row.heartbeat_at === null ? null : Number(row.heartbeat_at),
    }));
  }

  async workers(): Promise<WorkerRow[]> {
    const rows = await this.study.storage.query<{ id: string; host: string; pid: number; software: string; started_at: number; heartbeat_at: number; jobs_done: number }>(
      `SELECT id, host, pid, software, started_at, heartbeat_at, (SELECT count(*) FROM results r WHERE r.study = w.study AND r.worker = w.id) AS jobs_done
       FROM workers w WHERE study = $1 ORDER BY started_at, id`,
      [this.study.name],
    );
    return rows.map((row) => ({ id: row.id, host: row.host, pid: row.pid, software: row.software, startedAt: Number(row.started_at), heartbeatAt: Number(row.heartbeat_at), jobsDone: Number(row.jobs_done) }));
  }

  /** The database clock now, in milliseconds (status shows heartbeats' ages on it). */
  async clock(): Promise<number> {
    const [{ now }] = await this.study.storage.query<{ now: number }>(`SELECT ${this.study.storage.dialect.now} AS now`);
    return Number(now);
  }

  /** Each trial's checkpointed epochs (without the bytes). */
  async checkpointEpochs(): Promise<Map<number, number>> {
    const rows = await this.study.storage.query<{ trial: number; epochs: number }>('SELECT trial, epochs FROM checkpoints WHERE study = $1', [this.study.name]);
    return new Map(rows.map((row) => [row.trial, Number(row.epochs)]));
  }

  /** A trial's latest stored checkpoint, the bytes of its file. */
  async checkpoint(trial: number): Promise<{ epochs: number; data: Uint8Array } | null> {
    const rows = await this.study.storage.query<{ epochs: number; data: Uint8Array }>('SELECT epochs, data FROM checkpoints WHERE study = $1 AND trial = $2', [this.study.name, trial]);
    return rows.length === 0 ? null : { epochs: Number(rows[0].epochs), data: rows[0].data };
  }

  /** The stored files of a trial's model (empty until it has trained all its epochs). */
  async files(trial: number): Promise<StoredFile[]> {
    return this.study.storage.query<{ name: string; data: Uint8Array }>('SELECT name, data FROM files WHERE study = $1 AND trial = $2 ORDER BY name', [this.study.name, trial]);
  }

  /** The best model's test figures, once the search stored them. */
  async final(): Promise<FinalEvaluation | null> {
    const rows = await this.study.storage.query<{ final: string | null }>('SELECT final FROM studies WHERE name = $1', [this.study.name]);
    return rows[0]?.final ? (JSON.parse(rows[0].final) as FinalEvaluation) : null;
  }
}
