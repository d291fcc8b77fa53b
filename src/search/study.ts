/**
 * A study: one search's durable state in the search database (SQLite or PostgreSQL, the same
 * tables and the same queries), shared by every worker that trains it. Workers claim jobs
 * (a trial to train up to a rung), keep them alive with heartbeats, store checkpoints as they
 * train and record each result once; the promotions of successive halving are decided here,
 * from the results recorded, by the pure rule of halving.ts.
 *
 * Who holds a job is a lease: (worker, attempt). A job whose heartbeat is older than the study's
 * grace period goes back to be claimed again, with the next attempt number; every later write of
 * the old lease (heartbeat, checkpoint, result) then changes nothing, so a worker that was only
 * slow cannot overwrite the work of the one that took its job over.
 */
import type { FinalEvaluation, SearchSettings } from './search.ts';
import { promotionQuota, promotionScope, rungEpochs, rungSizes, trialsToPromote, type Halving } from './halving.ts';
import { ensureSchema } from './schema.ts';
import type { TrialParams } from './space.ts';
import type { SqlRunner, Statement, Storage } from './storage.ts';
import type { RungResult } from './trial.ts';
import { UserError } from '../errors.ts';
import type { EpochRecord } from '../training/fit.ts';
import { VERSION } from '../version.ts';

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

/** Rows per INSERT when a study's trials are written. */
const INSERT_CHUNK = 200;

async function insertRows(tx: SqlRunner, table: string, columns: string[], rows: unknown[][]): Promise<void> {
  for (let start = 0; start < rows.length; start += INSERT_CHUNK) {
    const chunk = rows.slice(start, start + INSERT_CHUNK);
    const values = chunk.map((_, r) => `(${columns.map((__, c) => `$${r * columns.length + c + 1}`).join(', ')})`).join(', ');
    await tx.execute(`INSERT INTO ${table} (${columns.join(', ')}) VALUES ${values}`, chunk.flat());
  }
}

export class Study {
  /** Epochs trained by the end of each rung. */
  readonly rungs: number[];
  /** Synchronous halving's number of trials at each rung. */
  readonly sizes: number[];
  /** When this process last looked for abandoned jobs, refreshed its worker row, looked at every rung's promotions (performance.now(), ms). */
  private abandonedCheckedAt = -Infinity;
  private workerBeatAt = -Infinity;
  private promotedAllAt = -Infinity;

  private constructor(
    readonly storage: Storage,
    readonly name: string,
    readonly settings: SearchSettings,
    /** Heartbeats older than this (milliseconds) mark a job as abandoned. */
    readonly graceMs: number,
    readonly trialCount: number,
  ) {
    this.rungs = rungEpochs(settings.minEpochs, settings.maxEpochs, settings.reductionFactor);
    this.sizes = rungSizes(trialCount, this.rungs.length, settings.reductionFactor);
  }

  get halving(): Halving {
    return this.settings.halving;
  }

  /** The database clock, for SQL text. */
  private get now(): string {
    return this.storage.dialect.now;
  }

  /**
   * Creates the study with its trials, every trial waiting at rung 0, or finds it. `created`
   * says which; the caller compares the settings of a study found.
   */
  static async create(storage: Storage, name: string, settings: SearchSettings, trials: TrialRow[], graceMs = DEFAULT_GRACE_MS): Promise<{ study: Study; created: boolean }> {
    await ensureSchema(storage, true);
    const now = storage.dialect.now;
    const created = await storage.transaction(async (tx) => {
      // ON CONFLICT: two machines starting the same study at once both succeed; one creates it.
      const inserted = await tx.execute(
        `INSERT INTO studies (name, settings, software, grace_ms, created_at) VALUES ($1, $2, $3, $4, ${now}) ON CONFLICT (name) DO NOTHING`,
        [name, JSON.stringify(settings), VERSION, graceMs],
      );
      if (inserted === 0) return false;
      await insertRows(tx, 'trials', ['study', 'id', 'params'], trials.map((trial) => [name, trial.id, JSON.stringify(trial.params)]));
      await insertRows(tx, 'jobs', ['study', 'trial', 'rung', 'state'], trials.map((trial) => [name, trial.id, 0, 'waiting']));
      const rungs = rungEpochs(settings.minEpochs, settings.maxEpochs, settings.reductionFactor);
      await insertRows(tx, 'rungs', ['study', 'rung'], rungs.map((_, rung) => [name, rung]));
      return true;
    }, { durable: true });
    return { study: await Study.load(storage, name), created };
  }

  /** A new grace period for the study's heartbeats (workers already running keep theirs). */
  async setGrace(graceMs: number): Promise<Study> {
    await this.storage.execute('UPDATE studies SET grace_ms = $2 WHERE name = $1', [this.name, graceMs]);
    return Study.load(this.storage, this.name);
  }

  /** An existing study; with no name, the database's only study. */
  static async open(storage: Storage, name?: string): Promise<Study> {
    await ensureSchema(storage, false);
    if (name === undefined) {
      const names = (await storage.query<{ name: string }>('SELECT name FROM studies ORDER BY name')).map((row) => row.name);
      if (names.length === 0) throw new UserError(`${storage.location} holds no study yet; start one with fmnist search MODEL.`);
      if (names.length > 1) throw new UserError(`${storage.location} holds ${names.length} studies (${names.join(', ')}); choose one with --study.`);
      name = names[0];
    }
    return Study.load(storage, name);
  }

  private static async load(storage: Storage, name: string): Promise<Study> {
    const rows = await storage.query<{ settings: string; grace_ms: number }>('SELECT settings, grace_ms FROM studies WHERE name = $1', [name]);
    if (rows.length === 0) throw new UserError(`${storage.location} holds no study "${name}"; start it with fmnist search MODEL --storage ... --study ${name}, or check the name.`);
    const [{ count }] = await storage.query<{ count: number }>('SELECT count(*) AS count FROM trials WHERE study = $1', [name]);
    return new Study(storage, name, JSON.parse(rows[0].settings) as SearchSettings, Number(rows[0].grace_ms), Number(count));
  }

  // ---- workers ----

  async registerWorker(worker: { id: string; host: string; pid: number }): Promise<void> {
    await this.storage.execute(
      `INSERT INTO workers (study, id, host, pid, software, started_at, heartbeat_at) VALUES ($1, $2, $3, $4, $5, ${this.now}, ${this.now})
       ON CONFLICT (study, id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at`,
      [this.name, worker.id, worker.host, worker.pid, VERSION],
    );
  }

  /**
   * The worker's heartbeat: refreshes its running jobs and its own row, and gives back the jobs
   * it still holds (one taken over by another worker is no longer among them).
   */
  async heartbeat(worker: string): Promise<{ trial: number; rung: number; attempt: number }[]> {
    const held = await this.storage.query<{ trial: number; rung: number; attempt: number }>(
      `UPDATE jobs SET heartbeat_at = ${this.now} WHERE study = $1 AND worker = $2 AND state = 'running' RETURNING trial, rung, attempt`,
      [this.name, worker],
    );
    // The worker's own row only shows it alive (status): at most every quarter of the grace period.
    if (performance.now() - this.workerBeatAt >= this.graceMs / 4) {
      this.workerBeatAt = performance.now();
      await this.storage.execute(`UPDATE workers SET heartbeat_at = ${this.now} WHERE study = $1 AND id = $2`, [this.name, worker]);
    }
    return held;
  }

  /**
   * Jobs left running by processes of this host that are no longer alive (a search killed and
   * started again) go back to waiting at once, instead of after the grace period.
   */
  async releaseDeadLocalWorkers(host: string, isAlive: (pid: number) => boolean): Promise<number> {
    const rows = await this.storage.query<{ trial: number; rung: number; attempt: number; pid: number }>(
      `SELECT j.trial, j.rung, j.attempt, w.pid FROM jobs j JOIN workers w ON w.study = j.study AND w.id = j.worker
       WHERE j.study = $1 AND j.state = 'running' AND w.host = $2`,
      [this.name, host],
    );
    let released = 0;
    for (const row of rows) {
      if (isAlive(Number(row.pid))) continue;
      released += await this.storage.execute(
        "UPDATE jobs SET state = 'waiting', worker = NULL WHERE study = $1 AND trial = $2 AND rung = $3 AND attempt = $4 AND state = 'running'",
        [this.name, row.trial, row.rung, row.attempt],
      );
    }
    return released;
  }

  // ---- jobs ----

  /**
   * Claims the next job for `worker`: the highest rung first (a promoted trial goes on before a
   * new one starts), then the lowest trial; a running job whose heartbeat is older than the
   * grace period counts as waiting. PostgreSQL's SKIP LOCKED lets concurrent claimers pass
   * each other's rows. With nothing to claim: `wait` while jobs still run elsewhere, `done`
   * when none do and no promotion is left to make (promotions delayed by a worker that died
   * between recording a result and promoting are made here: always before `done`, and every
   * quarter of the grace period while waiting).
   */
  async claim(worker: string): Promise<Claim> {
    for (;;) {
      const lease = await this.tryClaim(worker);
      if (lease) return { type: 'job', lease };
      const unfinished = await this.unfinishedJobs();
      const lookAtAll = unfinished === 0 || performance.now() - this.promotedAllAt >= this.graceMs / 4;
      if (lookAtAll) {
        this.promotedAllAt = performance.now();
        if ((await this.promote()) > 0) continue;
      }
      return unfinished > 0 ? { type: 'wait' } : { type: 'done' };
    }
  }

  private async tryClaim(worker: string): Promise<JobLease | null> {
    // An abandoned job first (its heartbeat older than the grace period), else the next waiting
    // one. Abandoned jobs are looked for at most every quarter of the grace period while there
    // are waiting jobs, and always when there are none: a query less per claim.
    const lookForAbandoned = performance.now() - this.abandonedCheckedAt >= this.graceMs / 4;
    const abandoned = () => this.claimWhere(worker, `state = 'running' AND heartbeat_at < ${this.now} - $3`, 'heartbeat_at', [this.graceMs]);
    let lease = lookForAbandoned ? await abandoned() : null;
    if (lookForAbandoned) this.abandonedCheckedAt = performance.now();
    lease ??= await this.claimWhere(worker, "state = 'waiting'", 'rung DESC, trial');
    if (!lease && !lookForAbandoned) lease = await abandoned();
    return lease;
  }

  /**
   * Marks the first job matching `condition` (in `order`) as this worker's, from the trial's
   * stored checkpoint, and returns it. The job is picked in a MATERIALIZED subquery, run once:
   * inlined, PostgreSQL may run it again for each row it joins, and claim several jobs at once.
   */
  private async claimWhere(worker: string, condition: string, order: string, extra: unknown[] = []): Promise<JobLease | null> {
    const rows = await this.storage.query<{ trial: number; rung: number; attempt: number; from_epoch: number }>(
      `WITH next AS MATERIALIZED (
         SELECT trial AS t, rung AS r FROM jobs WHERE study = $1 AND ${condition} ORDER BY ${order} LIMIT 1 ${this.storage.dialect.skipLocked})
       UPDATE jobs SET state = 'running', worker = $2, attempt = attempt + 1, claimed_at = ${this.now}, heartbeat_at = ${this.now},
         from_epoch = COALESCE((SELECT epochs FROM checkpoints c WHERE c.study = $1 AND c.trial = next.t), 0)
       FROM next WHERE study = $1 AND trial = next.t AND rung = next.r
       RETURNING trial, rung, attempt, from_epoch`,
      [this.name, worker, ...extra],
    );
    if (rows.length > 1) throw new Error(`a claim took ${rows.length} jobs at once`);
    if (rows.length === 0) return null;
    const { trial, rung, attempt, from_epoch: fromEpoch } = rows[0];
    return { trial, rung, attempt, worker, fromEpoch: Number(fromEpoch) };
  }

  /** Jobs waiting or running. */
  async unfinishedJobs(): Promise<number> {
    // Two counts, each over its partial index.
    const [{ count }] = await this.storage.query<{ count: number }>(
      "SELECT (SELECT count(*) FROM jobs WHERE study = $1 AND state = 'waiting') + (SELECT count(*) FROM jobs WHERE study = $1 AND state = 'running') AS count",
      [this.name],
    );
    return Number(count);
  }

  /** True when nothing is left to train: no job waiting or running, and no promotion to make. */
  async finished(): Promise<boolean> {
    return (await this.promote()) === 0 && (await this.unfinishedJobs()) === 0;
  }

  /** The lease's condition in SQL ($1..$5: study, trial, rung, worker, attempt). */
  private static readonly HELD = "study = $1 AND trial = $2 AND rung = $3 AND worker = $4 AND attempt = $5 AND state = 'running'";

  private leaseParams(lease: JobLease): unknown[] {
    return [this.name, lease.trial, lease.rung, lease.worker, lease.attempt];
  }

  /*
   * The writes of a lease (a checkpoint, a result) go to the database as one batch, one round
   * trip (Storage.batch), so no write can wait for another's answer: the first statement updates
   * the job row while the lease holds it, which locks the row (a concurrent claim of the job
   * skips it, or waits), and every write after it holds only while the lease still does
   * (HOLDS_LEASE, in SQL). A lease taken over, or a result already recorded, writes nothing.
   */

  /** The first statement of a lease's writes: a heartbeat, counting 1 changed row while the lease holds the job. */
  private touch(lease: JobLease): Statement {
    return { sql: `UPDATE jobs SET heartbeat_at = ${this.now} WHERE ${Study.HELD}`, params: this.leaseParams(lease) };
  }

  /** The condition of every write after touch() ($1..$5 as in HELD). */
  private static readonly HOLDS_LEASE = `EXISTS (SELECT 1 FROM jobs WHERE ${Study.HELD})`;

  /** Stores a checkpoint of the lease's trial, unless the job was taken over; false then. */
  async saveCheckpoint(lease: JobLease, epochs: number, data: Uint8Array): Promise<boolean> {
    // Not durable: a checkpoint lost in a crash of the database only means resuming from the one before.
    const [touched] = await this.storage.batch([this.touch(lease), this.upsertCheckpoint(lease, epochs, data)], { transaction: true });
    return touched.changes === 1;
  }

  private upsertCheckpoint(lease: JobLease, epochs: number, data: Uint8Array): Statement {
    // Never replaced by an older one: uploads of one trial may overlap.
    return {
      sql: `INSERT INTO checkpoints (study, trial, epochs, data, saved_at) SELECT $1, $2, $6, $7, ${this.now} WHERE ${Study.HOLDS_LEASE}
            ON CONFLICT (study, trial) DO UPDATE SET epochs = excluded.epochs, data = excluded.data, saved_at = excluded.saved_at
            WHERE checkpoints.epochs <= excluded.epochs`,
      params: [...this.leaseParams(lease), epochs, data],
    };
  }

  /**
   * Records the lease's result, with the trial's checkpoint at the rung and, when the trial has
   * trained all its epochs, its model's files, all in one transaction; then makes the
   * promotions the result allows. False, and nothing written, when the job was taken over.
   */
  async record(lease: JobLease, result: RungResult, extra: { checkpoint?: { epochs: number; data: Uint8Array }; files?: StoredFile[] } = {}): Promise<boolean> {
    const held = this.leaseParams(lease);
    const writes: Statement[] = [
      {
        sql: `INSERT INTO results (study, trial, rung, epochs, val_accuracy, val_loss, best_epoch, seconds, history, failure, worker, recorded_at)
              SELECT $1, $2, $3, $6, $7, $8, $9, $10, $11, $12, $4, ${this.now} WHERE ${Study.HOLDS_LEASE}`,
        params: [...held, result.epochs, result.valAccuracy, result.valLoss, result.bestEpoch, result.seconds, JSON.stringify(result.history), result.failure],
      },
    ];
    if (extra.checkpoint) writes.push(this.upsertCheckpoint(lease, extra.checkpoint.epochs, extra.checkpoint.data));
    // A trial that trained all its epochs, or diverged, goes no further: its checkpoint is dropped.
    if (extra.files || result.failure !== null) writes.push({ sql: `DELETE FROM checkpoints WHERE study = $1 AND trial = $2 AND ${Study.HOLDS_LEASE}`, params: held });
    for (const file of extra.files ?? []) {
      writes.push({
        sql: `INSERT INTO files (study, trial, name, data) SELECT $1, $2, $6, $7 WHERE ${Study.HOLDS_LEASE}
              ON CONFLICT (study, trial, name) DO UPDATE SET data = excluded.data`,
        params: [...held, file.name, file.data],
      });
    }
    const done = { sql: `UPDATE jobs SET state = 'done' WHERE ${Study.HELD}`, params: held };
    const [touched] = await this.storage.batch([this.touch(lease), ...writes, done], { transaction: true, durable: true });
    if (touched.changes === 0) return false;

    // After the commit, so that of two results recorded at once, the later count sees both. The
    // count is not durable: after a crash between the two it is one short, which only delays a
    // promotion (the idle workers' check counts the results themselves). Sent with it, what
    // asynchronous halving asks of every new result: how many results of its rung rank ahead.
    const rank = this.halving === 'async' && lease.rung < this.rungs.length - 1 && result.valAccuracy !== null;
    const [counted, ranked] = await this.storage.batch([
      { sql: 'UPDATE rungs SET results = results + 1 WHERE study = $1 AND rung = $2 RETURNING results', params: [this.name, lease.rung] },
      ...(rank ? [this.resultsAhead(result)] : []),
    ]);
    await this.promoteAfter(result, Number(counted.rows[0].results), rank ? Number(ranked.rows[0].ahead) : null);
    return true;
  }

  /**
   * The results of the new result's rung that rank ahead of it, counted up to the rung's
   * quota (looking no further than that). The quota is read from the rung's count, which this
   * statement sees at least as high as the count its worker was given (it runs after that
   * increment was committed), so the count is exact up to the worker's own quota. (The CAST
   * makes the division an integer one in SQLite too, which binds JavaScript numbers as floats.)
   */
  private resultsAhead(result: RungResult): Statement {
    return {
      sql: `SELECT count(*) AS ahead FROM (
              SELECT 1 FROM results WHERE study = $1 AND rung = $2 AND val_accuracy IS NOT NULL AND (val_accuracy > $3 OR (val_accuracy = $3 AND trial < $4))
              LIMIT (SELECT results / CAST($5 AS INTEGER) FROM rungs WHERE study = $1 AND rung = $2)) AS ahead`,
      params: [this.name, result.rung, result.valAccuracy, result.trial, this.settings.reductionFactor],
    };
  }

  /** Gives a held job back (its worker is stopping): waiting again, for any worker. */
  async release(lease: JobLease): Promise<void> {
    await this.storage.execute(`UPDATE jobs SET state = 'waiting', worker = NULL WHERE ${Study.HELD}`, this.leaseParams(lease));
  }

  /**
   * Promotes what the halving rule allows at every rung, from the results committed: what a
   * worker with nothing to claim does, in case promotions were delayed (a worker that died
   * between recording a result and promoting). Returns the number of jobs added.
   */
  async promote(): Promise<number> {
    let added = 0;
    for (let rung = 0; rung < this.rungs.length - 1; rung++) {
      const [{ count }] = await this.storage.query<{ count: number }>('SELECT count(*) AS count FROM results WHERE study = $1 AND rung = $2', [this.name, rung]);
      added += await this.promoteTop(rung, Number(count));
    }
    return added;
  }

  /**
   * The promotions a new result (the `results`-th of its rung) allows (promotionScope): the
   * new result if it ranks within the quota, the trial at the quota's last place when the quota
   * grew, or the rung's whole top. Two workers at once may choose the same trial; its primary
   * key keeps one job, and each choice is right for what its worker saw (under asynchronous
   * halving a promotion is never taken back).
   */
  private async promoteAfter(result: RungResult, results: number, ahead: number | null): Promise<number> {
    const { rung } = result;
    if (rung >= this.rungs.length - 1) return 0;
    const scope = promotionScope(this.halving, this.settings.reductionFactor, results);
    if (scope === 'top') return this.promoteTop(rung, results);
    const quota = promotionQuota(this.halving, this.settings.reductionFactor, { results, pending: 0, nextSize: this.sizes[rung + 1] });
    if (quota === 0) return 0;
    const chosen: number[] = [];
    // Ranks within the quota: fewer than `quota` results ahead (null: the trial diverged).
    if (ahead !== null && ahead < quota) chosen.push(result.trial);
    if (scope === 'new-and-boundary') {
      const last = await this.storage.query<{ trial: number; promoted: number | null }>(
        `SELECT top.trial, (SELECT j.trial FROM jobs j WHERE j.study = $1 AND j.trial = top.trial AND j.rung = $4) AS promoted FROM (
           SELECT trial FROM results WHERE study = $1 AND rung = $2 AND val_accuracy IS NOT NULL
           ORDER BY val_accuracy DESC, trial LIMIT 1 OFFSET $3) AS top`,
        [this.name, rung, quota - 1, rung + 1],
      );
      if (last.length > 0 && last[0].promoted === null && last[0].trial !== result.trial) chosen.push(last[0].trial);
    }
    return this.insertPromotions(rung, chosen);
  }

  /** Promotes the trials of the rung's top `quota` (for `results` results at the rung) that have not gone on yet. */
  private async promoteTop(rung: number, results: number): Promise<number> {
    // Whether any job of the rung is pending is all synchronous halving asks (0, 1 or 2 here).
    const pending =
      this.halving === 'sync'
        ? Number(
            (
              await this.storage.query<{ pending: number }>(
                `SELECT (SELECT count(*) FROM (SELECT 1 FROM jobs WHERE study = $1 AND state = 'waiting' AND rung = $2 LIMIT 1) AS w)
                      + (SELECT count(*) FROM (SELECT 1 FROM jobs WHERE study = $1 AND state = 'running' AND rung = $2 LIMIT 1) AS r) AS pending`,
                [this.name, rung],
              )
            )[0].pending,
          )
        : 0;
    const quota = promotionQuota(this.halving, this.settings.reductionFactor, { results, pending, nextSize: this.sizes[rung + 1] });
    if (quota === 0) return 0;
    // The rung's best `quota` results without a job at the next rung (the database leaves out
    // the others rather than sending them all).
    const rows = await this.storage.query<{ trial: number; val_accuracy: number }>(
      `SELECT top.trial, top.val_accuracy FROM (
         SELECT trial, val_accuracy FROM results WHERE study = $1 AND rung = $2 AND val_accuracy IS NOT NULL
         ORDER BY val_accuracy DESC, trial LIMIT $3) AS top
       WHERE (SELECT j.trial FROM jobs j WHERE j.study = $1 AND j.trial = top.trial AND j.rung = $4) IS NULL`,
      [this.name, rung, quota, rung + 1],
    );
    return this.insertPromotions(rung, trialsToPromote(rows.map((row) => ({ trial: row.trial, valAccuracy: Number(row.val_accuracy) })), new Set(), quota));
  }

  /**
   * Waiting jobs at rung + 1 for the trials, in one statement: a rung's promotions appear
   * together, so that synchronous halving never sees part of the next rung. Not durable: made
   * again from the results after a crash.
   */
  private async insertPromotions(rung: number, trials: number[]): Promise<number> {
    if (trials.length === 0) return 0;
    if (this.halving === 'sync') {
      const values = trials.map((_, i) => `($1, $${i + 3}, $2, 'waiting')`).join(', ');
      return this.storage.execute(`INSERT INTO jobs (study, trial, rung, state) VALUES ${values} ON CONFLICT (study, trial, rung) DO NOTHING`, [this.name, rung + 1, ...trials]);
    }
    // Asynchronous halving promotes no more trials to a rung than synchronous halving would
    // (Hyperband's budget for the rung): a trial that ranked in the top 1/eta early and fell out
    // of it later keeps its promotion, and without the cap those early promotions add jobs, which
    // on a few workers cost more time than the waiting they save. The no-op update locks the
    // next rung's row (PostgreSQL; an SQLite transaction excludes the others anyway), so that two
    // workers promoting at once count each other's promotions: the insert, a statement after
    // it, counts the rung's jobs once the lock is held, and takes the trials, in their order,
    // that fit in the room left (`place`: 1 for the first).
    const chosen = trials.map((_, i) => `(CAST($${i + 4} AS INTEGER), ${i + 1})`).join(', ');
    const [, inserted] = await this.storage.batch(
      [
        { sql: 'UPDATE rungs SET results = results WHERE study = $1 AND rung = $2', params: [this.name, rung + 1] },
        {
          sql: `WITH chosen (trial, place) AS (VALUES ${chosen})
                INSERT INTO jobs (study, trial, rung, state)
                SELECT $1, trial, $2, 'waiting' FROM chosen WHERE place <= $3 - (SELECT count(*) FROM jobs WHERE study = $1 AND rung = $2)
                ON CONFLICT (study, trial, rung) DO NOTHING`,
          params: [this.name, rung + 1, this.sizes[rung + 1], ...trials],
        },
      ],
      { transaction: true },
    );
    return inserted.changes;
  }

  // ---- reading ----

  async trials(): Promise<TrialRow[]> {
    const rows = await this.storage.query<{ id: number; params: string }>('SELECT id, params FROM trials WHERE study = $1 ORDER BY id', [this.name]);
    return rows.map((row) => ({ id: row.id, params: JSON.parse(row.params) as TrialParams }));
  }

  async results(): Promise<RecordedResult[]> {
    const rows = await this.storage.query<{
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
    }>('SELECT trial, rung, epochs, val_accuracy, val_loss, best_epoch, seconds, history, failure, worker FROM results WHERE study = $1 ORDER BY rung, trial', [this.name]);
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
    const rows = await this.storage.query<{ trial: number; rung: number; state: JobState; worker: string | null; attempt: number; from_epoch: number | null; heartbeat_at: number | null }>(
      'SELECT trial, rung, state, worker, attempt, from_epoch, heartbeat_at FROM jobs WHERE study = $1 ORDER BY rung, trial',
      [this.name],
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
    const rows = await this.storage.query<{ id: string; host: string; pid: number; software: string; started_at: number; heartbeat_at: number; jobs_done: number }>(
      `SELECT id, host, pid, software, started_at, heartbeat_at, (SELECT count(*) FROM results r WHERE r.study = w.study AND r.worker = w.id) AS jobs_done
       FROM workers w WHERE study = $1 ORDER BY started_at, id`,
      [this.name],
    );
    return rows.map((row) => ({ id: row.id, host: row.host, pid: row.pid, software: row.software, startedAt: Number(row.started_at), heartbeatAt: Number(row.heartbeat_at), jobsDone: Number(row.jobs_done) }));
  }

  /** The database clock now, in milliseconds (status shows heartbeats' ages on it). */
  async clock(): Promise<number> {
    const [{ now }] = await this.storage.query<{ now: number }>(`SELECT ${this.now} AS now`);
    return Number(now);
  }

  /** Each trial's checkpointed epochs (without the bytes). */
  async checkpointEpochs(): Promise<Map<number, number>> {
    const rows = await this.storage.query<{ trial: number; epochs: number }>('SELECT trial, epochs FROM checkpoints WHERE study = $1', [this.name]);
    return new Map(rows.map((row) => [row.trial, Number(row.epochs)]));
  }

  async checkpoint(trial: number): Promise<{ epochs: number; data: Uint8Array } | null> {
    const rows = await this.storage.query<{ epochs: number; data: Uint8Array }>('SELECT epochs, data FROM checkpoints WHERE study = $1 AND trial = $2', [this.name, trial]);
    return rows.length === 0 ? null : { epochs: Number(rows[0].epochs), data: rows[0].data };
  }

  /** The stored files of a trial's model (empty until it has trained all its epochs). */
  async files(trial: number): Promise<StoredFile[]> {
    return this.storage.query<{ name: string; data: Uint8Array }>('SELECT name, data FROM files WHERE study = $1 AND trial = $2 ORDER BY name', [this.name, trial]);
  }

  async final(): Promise<FinalEvaluation | null> {
    const rows = await this.storage.query<{ final: string | null }>('SELECT final FROM studies WHERE name = $1', [this.name]);
    return rows[0]?.final ? (JSON.parse(rows[0].final) as FinalEvaluation) : null;
  }

  /** Removes the study and everything it holds from the database (benchmarks clean up with it). */
  async delete(): Promise<void> {
    await this.storage.transaction(async (tx) => {
      for (const table of ['results', 'rungs', 'checkpoints', 'files', 'workers', 'jobs', 'trials']) await tx.execute(`DELETE FROM ${table} WHERE study = $1`, [this.name]);
      await tx.execute('DELETE FROM studies WHERE name = $1', [this.name]);
    });
  }

  async setFinal(final: FinalEvaluation): Promise<void> {
    await this.storage.transaction((tx) => tx.execute('UPDATE studies SET final = $2 WHERE name = $1', [this.name, JSON.stringify(final)]), { durable: true });
  }
}
