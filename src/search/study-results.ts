/**
 * A study's results: each (trial, rung) recorded once (its primary key), by the lease holder,
 * together with the trial's checkpoint at the rung or, when the trial has trained all its
 * epochs, its model; then the promotions the result allows. And the search's final figures.
 */
import type { Statement } from './storage.ts';
import { HELD, HOLDS_LEASE, leaseParams, touch, upsertCheckpoint } from './study-leases.ts';
import type { Promotions } from './study-promotions.ts';
import type { JobLease, StoredFile, StudyContext } from './study-types.ts';
import type { FinalEvaluation } from './summary.ts';
import type { RungResult } from './trial.ts';

export class Results {
  constructor(
    private readonly study: StudyContext,
    private readonly promotions: Promotions,
  ) {}

  /**
   * Records the lease's result, with the trial's checkpoint at the rung and, when the trial has
   * trained all its epochs, its model's files, all in one durable transaction sent as one batch
   * (see study-leases.ts); then makes the promotions the result allows. False, and nothing
   * written, when the job was taken over or its result is recorded already.
   */
  async record(lease: JobLease, result: RungResult, extra: { checkpoint?: { epochs: number; data: Uint8Array }; files?: StoredFile[] } = {}): Promise<boolean> {
    const { storage, name, settings, rungs } = this.study;
    const now = storage.dialect.now;
    const held = leaseParams(this.study, lease);
    const writes: Statement[] = [
      {
        sql: `INSERT INTO results (study, trial, rung, epochs, val_accuracy, val_loss, best_epoch, seconds, history, failure, worker, recorded_at)
              SELECT $1, $2, $3, $6, $7, $8, $9, $10, $11, $12, $4, ${now} WHERE ${HOLDS_LEASE}`,
        params: [...held, result.epochs, result.valAccuracy, result.valLoss, result.bestEpoch, result.seconds, JSON.stringify(result.history), result.failure],
      },
    ];
    if (extra.checkpoint) writes.push(upsertCheckpoint(this.study, lease, extra.checkpoint.epochs, extra.checkpoint.data));
    // A trial that trained all its epochs, or diverged, goes no further: its checkpoint is dropped.
    if (extra.files || result.failure !== null) writes.push({ sql: `DELETE FROM checkpoints WHERE study = $1 AND trial = $2 AND ${HOLDS_LEASE}`, params: held });
    for (const file of extra.files ?? []) {
      writes.push({
        sql: `INSERT INTO files (study, trial, name, data) SELECT $1, $2, $6, $7 WHERE ${HOLDS_LEASE}
              ON CONFLICT (study, trial, name) DO UPDATE SET data = excluded.data`,
        params: [...held, file.name, file.data],
      });
    }
    const done = { sql: `UPDATE jobs SET state = 'done' WHERE ${HELD}`, params: held };
    const [touched] = await storage.batch([touch(this.study, lease), ...writes, done], { transaction: true, durable: true });
    if (touched.changes === 0) return false;

    // After the commit, so that of two results recorded at once, the later count sees both. The
    // count is not durable: after a crash between the two it is one short, which only delays a
    // promotion (the idle workers' check counts the results themselves). Sent with it, what
    // asynchronous halving asks of every new result: how many results of its rung rank ahead.
    const rank = settings.halving === 'async' && lease.rung < rungs.length - 1 && result.valAccuracy !== null;
    const [counted, ranked] = await storage.batch([
      { sql: 'UPDATE rungs SET results = results + 1 WHERE study = $1 AND rung = $2 RETURNING results', params: [name, lease.rung] },
      ...(rank ? [this.promotions.resultsAhead(result)] : []),
    ]);
    await this.promotions.afterResult(result, Number(counted.rows[0].results), rank ? Number(ranked.rows[0].ahead) : null);
    return true;
  }

  /** The best model's test figures, stored once the search is over (durably). */
  async setFinal(final: FinalEvaluation): Promise<void> {
    await this.study.storage.transaction((tx) => tx.execute('UPDATE studies SET final = $2 WHERE name = $1', [this.study.name, JSON.stringify(final)]), { durable: true });
  }
}
