/**
 * A study's promotions: the jobs of successive halving's next rungs, decided from the results
 * the database holds by the pure rule of halving.ts. A worker applies the rule right after it
 * records a result (`afterResult`), and a worker with nothing to claim looks at every rung
 * (`all`), in case a worker died between recording a result and promoting.
 */
import { promotionQuota, promotionScope, trialsToPromote } from './halving.ts';
import type { Statement } from './storage.ts';
import type { StudyContext } from './study-types.ts';
import type { RungResult } from './trial.ts';

export class Promotions {
  constructor(private readonly study: StudyContext) {}

  private get halving() {
    return this.study.settings.halving;
  }

  /**
   * Promotes what the halving rule allows at every rung, from the results committed. Returns
   * the number of jobs added.
   */
  async all(): Promise<number> {
    let added = 0;
    for (let rung = 0; rung < this.study.rungs.length - 1; rung++) {
      const [{ count }] = await this.study.storage.query<{ count: number }>('SELECT count(*) AS count FROM results WHERE study = $1 AND rung = $2', [this.study.name, rung]);
      added += await this.promoteTop(rung, Number(count));
    }
    return added;
  }

  /**
   * The results of the new result's rung that rank ahead of it, counted up to the rung's
   * quota (looking no further than that): what asynchronous halving asks of every new result,
   * sent together with the rung's count. The quota is read from the rung's count, which this
   * statement sees at least as high as the count its worker was given (it runs after that
   * increment was committed), so the count is exact up to the worker's own quota. (The CAST
   * makes the division an integer one in SQLite too, which binds JavaScript numbers as floats.)
   */
  resultsAhead(result: RungResult): Statement {
    return {
      sql: `SELECT count(*) AS ahead FROM (
              SELECT 1 FROM results WHERE study = $1 AND rung = $2 AND val_accuracy IS NOT NULL AND (val_accuracy > $3 OR (val_accuracy = $3 AND trial < $4))
              LIMIT (SELECT results / CAST($5 AS INTEGER) FROM rungs WHERE study = $1 AND rung = $2)) AS ahead`,
      params: [this.study.name, result.rung, result.valAccuracy, result.trial, this.study.settings.reductionFactor],
    };
  }

  /**
   * The promotions a new result (the `results`-th of its rung, with `ahead` results ranking
   * ahead of it where resultsAhead was asked) allows (promotionScope): the new result if it
   * ranks within the quota, the trial at the quota's last place when the quota grew, or the
   * rung's whole top. Two workers at once may choose the same trial; its primary key keeps one
   * job, and each choice is right for what its worker saw (under asynchronous halving a
   * promotion is never taken back).
   */
  async afterResult(result: RungResult, results: number, ahead: number | null): Promise<number> {
    const { rung } = result;
    const { name, settings, sizes, storage } = this.study;
    if (rung >= this.study.rungs.length - 1) return 0;
    const scope = promotionScope(this.halving, settings.reductionFactor, results);
    if (scope === 'top') return this.promoteTop(rung, results);
    const quota = promotionQuota(this.halving, settings.reductionFactor, { results, pending: 0, nextSize: sizes[rung + 1] });
    if (quota === 0) return 0;
    const chosen: number[] = [];
    // Ranks within the quota: fewer than `quota` results ahead (null: the trial diverged).
    if (ahead !== null && ahead < quota) chosen.push(result.trial);
    if (scope === 'new-and-boundary') {
      const last = await storage.query<{ trial: number; promoted: number | null }>(
        `SELECT top.trial, (SELECT j.trial FROM jobs j WHERE j.study = $1 AND j.trial = top.trial AND j.rung = $4) AS promoted FROM (
           SELECT trial FROM results WHERE study = $1 AND rung = $2 AND val_accuracy IS NOT NULL
           ORDER BY val_accuracy DESC, trial LIMIT 1 OFFSET $3) AS top`,
        [name, rung, quota - 1, rung + 1],
      );
      if (last.length > 0 && last[0].promoted === null && last[0].trial !== result.trial) chosen.push(last[0].trial);
    }
    return this.insert(rung, chosen);
  }

  /** Promotes the trials of the rung's top `quota` (for `results` results at the rung) that have not gone on yet. */
  private async promoteTop(rung: number, results: number): Promise<number> {
    const { name, settings, sizes, storage } = this.study;
    // Whether any job of the rung is pending is all synchronous halving asks (0, 1 or 2 here).
    const pending =
      this.halving === 'sync'
        ? Number(
            (
              await storage.query<{ pending: number }>(
                `SELECT (SELECT count(*) FROM (SELECT 1 FROM jobs WHERE study = $1 AND state = 'waiting' AND rung = $2 LIMIT 1) AS w)
                      + (SELECT count(*) FROM (SELECT 1 FROM jobs WHERE study = $1 AND state = 'running' AND rung = $2 LIMIT 1) AS r) AS pending`,
                [name, rung],
              )
            )[0].pending,
          )
        : 0;
    const quota = promotionQuota(this.halving, settings.reductionFactor, { results, pending, nextSize: sizes[rung + 1] });
    if (quota === 0) return 0;
    // The rung's best `quota` results without a job at the next rung (the database leaves out
    // the others rather than sending them all).
    const rows = await storage.query<{ trial: number; val_accuracy: number }>(
      `SELECT top.trial, top.val_accuracy FROM (
         SELECT trial, val_accuracy FROM results WHERE study = $1 AND rung = $2 AND val_accuracy IS NOT NULL
         ORDER BY val_accuracy DESC, trial LIMIT $3) AS top
       WHERE (SELECT j.trial FROM jobs j WHERE j.study = $1 AND j.trial = top.trial AND j.rung = $4) IS NULL`,
      [name, rung, quota, rung + 1],
    );
    return this.insert(rung, trialsToPromote(rows.map((row) => ({ trial: row.trial, valAccuracy: Number(row.val_accuracy) })), new Set(), quota));
  }

  /**
   * Waiting jobs at rung + 1 for the trials, in one statement: a rung's promotions appear
   * together, so that synchronous halving never sees part of the next rung. Not durable: made
   * again from the results after a crash.
   */
  private async insert(rung: number, trials: number[]): Promise<number> {
    const { name, sizes, storage } = this.study;
    if (trials.length === 0) return 0;
    if (this.halving === 'sync') {
      const values = trials.map((_, i) => `($1, $${i + 3}, $2, 'waiting')`).join(', ');
      return storage.execute(`INSERT INTO jobs (study, trial, rung, state) VALUES ${values} ON CONFLICT (study, trial, rung) DO NOTHING`, [name, rung + 1, ...trials]);
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
    const [, inserted] = await storage.batch(
      [
        { sql: 'UPDATE rungs SET results = results WHERE study = $1 AND rung = $2', params: [name, rung + 1] },
        {
          sql: `WITH chosen (trial, place) AS (VALUES ${chosen})
                INSERT INTO jobs (study, trial, rung, state)
                SELECT $1, trial, $2, 'waiting' FROM chosen WHERE place <= $3 - (SELECT count(*) FROM jobs WHERE study = $1 AND rung = $2)
                ON CONFLICT (study, trial, rung) DO NOTHING`,
          params: [name, rung + 1, sizes[rung + 1], ...trials],
        },
      ],
      { transaction: true },
    );
    return inserted.changes;
  }
}
