/**
 * A study's leases and heartbeats: workers register, claim jobs, keep them with heartbeats,
 * store checkpoints under them and give them back. Who holds a job is a lease: (worker,
 * attempt). A job whose heartbeat is older than the study's grace period goes back to be
 * claimed again, with the next attempt number; every later write of the old lease (heartbeat,
 * checkpoint, result) then changes nothing, so a worker that was only slow cannot overwrite the
 * work of the one that took its job over.
 *
 * The writes of a lease (a checkpoint; a result, in study-results.ts) go to the database as one
 * batch, one round trip (Storage.batch), so no write can wait for another's answer: the first
 * statement (`touch`) updates the job row while the lease holds it, which locks the row (a
 * concurrent claim of the job skips it, or waits), and every write after it holds only while
 * the lease still does (`HOLDS_LEASE`, in SQL). A lease taken over writes nothing.
 */
import type { Statement } from './storage.ts';
import type { Promotions } from './study-promotions.ts';
import { VERSION } from '../version.ts';
import type { Claim, JobLease, StudyContext } from './study-types.ts';

/** The lease's condition in SQL ($1..$5: study, trial, rung, worker, attempt). */
export const HELD = "study = $1 AND trial = $2 AND rung = $3 AND worker = $4 AND attempt = $5 AND state = 'running'";

/** The condition of every write after touch() ($1..$5 as in HELD). */
export const HOLDS_LEASE = `EXISTS (SELECT 1 FROM jobs WHERE ${HELD})`;

/** The parameters $1..$5 of HELD and HOLDS_LEASE. */
export function leaseParams(study: StudyContext, lease: JobLease): unknown[] {
  return [study.name, lease.trial, lease.rung, lease.worker, lease.attempt];
}

/** The first statement of a lease's writes: a heartbeat, counting 1 changed row while the lease holds the job. */
export function touch(study: StudyContext, lease: JobLease): Statement {
  return { sql: `UPDATE jobs SET heartbeat_at = ${study.storage.dialect.now} WHERE ${HELD}`, params: leaseParams(study, lease) };
}

/** Stores `data` as the lease's trial's checkpoint at `epochs`, while the lease holds (never over a newer one: uploads of one trial may overlap). */
export function upsertCheckpoint(study: StudyContext, lease: JobLease, epochs: number, data: Uint8Array): Statement {
  return {
    sql: `INSERT INTO checkpoints (study, trial, epochs, data, saved_at) SELECT $1, $2, $6, $7, ${study.storage.dialect.now} WHERE ${HOLDS_LEASE}
          ON CONFLICT (study, trial) DO UPDATE SET epochs = excluded.epochs, data = excluded.data, saved_at = excluded.saved_at
          WHERE checkpoints.epochs <= excluded.epochs`,
    params: [...leaseParams(study, lease), epochs, data],
  };
}

export class Leases {
  /** When this process last looked for abandoned jobs, refreshed its worker row, looked at every rung's promotions (performance.now(), ms). */
  private abandonedCheckedAt = -Infinity;
  private workerBeatAt = -Infinity;
  private promotedAllAt = -Infinity;

  constructor(
    private readonly study: StudyContext,
    private readonly promotions: Promotions,
  ) {}

  /** The database clock, for SQL text. */
  private get now(): string {
    return this.study.storage.dialect.now;
  }

  async registerWorker(worker: { id: string; host: string; pid: number }): Promise<void> {
    await this.study.storage.execute(
      `INSERT INTO workers (study, id, host, pid, software, started_at, heartbeat_at) VALUES ($1, $2, $3, $4, $5, ${this.now}, ${this.now})
       ON CONFLICT (study, id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at`,
      [this.study.name, worker.id, worker.host, worker.pid, VERSION],
    );
  }

  /**
   * The worker's heartbeat: refreshes its running jobs and its own row, and gives back the jobs
   * it still holds (one taken over by another worker is no longer among them).
   */
  async heartbeat(worker: string): Promise<{ trial: number; rung: number; attempt: number }[]> {
    const held = await this.study.storage.query<{ trial: number; rung: number; attempt: number }>(
      `UPDATE jobs SET heartbeat_at = ${this.now} WHERE study = $1 AND worker = $2 AND state = 'running' RETURNING trial, rung, attempt`,
      [this.study.name, worker],
    );
    // The worker's own row only shows it alive (status): at most every quarter of the grace period.
    if (performance.now() - this.workerBeatAt >= this.study.graceMs / 4) {
      this.workerBeatAt = performance.now();
      await this.study.storage.execute(`UPDATE workers SET heartbeat_at = ${this.now} WHERE study = $1 AND id = $2`, [this.study.name, worker]);
    }
    return held;
  }

  /**
   * Jobs left running by processes of this host that are no longer alive (a search killed and
   * started again) go back to waiting at once, instead of after the grace period.
   */
  async releaseDeadLocalWorkers(host: string, isAlive: (pid: number) => boolean): Promise<number> {
    const rows = await this.study.storage.query<{ trial: number; rung: number; attempt: number; pid: number }>(
      `SELECT j.trial, j.rung, j.attempt, w.pid FROM jobs j JOIN workers w ON w.study = j.study AND w.id = j.worker
       WHERE j.study = $1 AND j.state = 'running' AND w.host = $2`,
      [this.study.name, host],
    );
    let released = 0;
    for (const row of rows) {
      if (isAlive(Number(row.pid))) continue;
      released += await this.study.storage.execute(
        "UPDATE jobs SET state = 'waiting', worker = NULL WHERE study = $1 AND trial = $2 AND rung = $3 AND attempt = $4 AND state = 'running'",
        [this.study.name, row.trial, row.rung, row.attempt],
      );
    }
    return released;
  }

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
      const lookAtAll = unfinished === 0 || performance.now() - this.promotedAllAt >= this.study.graceMs / 4;
      if (lookAtAll) {
        this.promotedAllAt = performance.now();
        if ((await this.promotions.all()) > 0) continue;
      }
      return unfinished > 0 ? { type: 'wait' } : { type: 'done' };
    }
  }

  private async tryClaim(worker: string): Promise<JobLease | null> {
    // An abandoned job first (its heartbeat older than the grace period), else the next waiting
    // one. Abandoned jobs are looked for at most every quarter of the grace period while there
    // are waiting jobs, and always when there are none: a query less per claim.
    const lookForAbandoned = performance.now() - this.abandonedCheckedAt >= this.study.graceMs / 4;
    const abandoned = () => this.claimWhere(worker, `state = 'running' AND heartbeat_at < ${this.now} - $3`, 'heartbeat_at', [this.study.graceMs]);
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
    const rows = await this.study.storage.query<{ trial: number; rung: number; attempt: number; from_epoch: number }>(
      `WITH next AS MATERIALIZED (
         SELECT trial AS t, rung AS r FROM jobs WHERE study = $1 AND ${condition} ORDER BY ${order} LIMIT 1 ${this.study.storage.dialect.skipLocked})
       UPDATE jobs SET state = 'running', worker = $2, attempt = attempt + 1, claimed_at = ${this.now}, heartbeat_at = ${this.now},
         from_epoch = COALESCE((SELECT epochs FROM checkpoints c WHERE c.study = $1 AND c.trial = next.t), 0)
       FROM next WHERE study = $1 AND trial = next.t AND rung = next.r
       RETURNING trial, rung, attempt, from_epoch`,
      [this.study.name, worker, ...extra],
    );
    if (rows.length > 1) throw new Error(`a claim took ${rows.length} jobs at once`);
    if (rows.length === 0) return null;
    const { trial, rung, attempt, from_epoch: fromEpoch } = rows[0];
    return { trial, rung, attempt, worker, fromEpoch: Number(fromEpoch) };
  }

  /** Jobs waiting or running. */
  async unfinishedJobs(): Promise<number> {
    // Two counts, each over its partial index.
    const [{ count }] = await this.study.storage.query<{ count: number }>(
      "SELECT (SELECT count(*) FROM jobs WHERE study = $1 AND state = 'waiting') + (SELECT count(*) FROM jobs WHERE study = $1 AND state = 'running') AS count",
      [this.study.name],
    );
    return Number(count);
  }

  /** Stores a checkpoint of the lease's trial, unless the job was taken over; false then. */
  async saveCheckpoint(lease: JobLease, epochs: number, data: Uint8Array): Promise<boolean> {
    // Not durable: a checkpoint lost in a crash of the database only means resuming from the one before.
    const [touched] = await this.study.storage.batch([touch(this.study, lease), upsertCheckpoint(this.study, lease, epochs, data)], { transaction: true });
    return touched.changes === 1;
  }

  /** Gives a held job back (its worker is stopping): waiting again, for any worker. */
  async release(lease: JobLease): Promise<void> {
    await this.study.storage.execute(`UPDATE jobs SET state = 'waiting', worker = NULL WHERE ${HELD}`, leaseParams(this.study, lease));
  }
}
