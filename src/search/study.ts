/**
 * A study: one search's durable state in the search database (SQLite or PostgreSQL, the same
 * tables and the same queries), shared by every worker that trains it. This module creates and
 * opens studies; their work is split by concern, each part with its own SQL:
 *
 *   study.leases      workers claim jobs (a trial to train up to a rung), keep them with
 *                     heartbeats and store checkpoints under them (study-leases.ts)
 *   study.promotions  successive halving's next rungs, from the results recorded, by the pure
 *                     rule of halving.ts (study-promotions.ts)
 *   study.results     each result recorded once, with the trial's checkpoint or model, and the
 *                     final test figures (study-results.ts)
 *   study.reads       what the status and the reports read (study-reads.ts)
 */
import { UserError } from '../errors.ts';
import { VERSION } from '../version.ts';
import { rungEpochs, rungSizes, type Halving } from './halving.ts';
import { ensureSchema } from './schema.ts';
import { resolveSettings, type SearchRequest, type SearchSettings } from './settings.ts';
import type { SqlRunner, Storage } from './storage.ts';
import { Leases } from './study-leases.ts';
import { Promotions } from './study-promotions.ts';
import { StudyReads } from './study-reads.ts';
import { Results } from './study-results.ts';
import { DEFAULT_GRACE_MS, type StudyContext, type TrialRow } from './study-types.ts';

export { DEFAULT_GRACE_MS } from './study-types.ts';
export type { Claim, JobLease, JobRow, JobState, RecordedResult, StoredFile, TrialRow, WorkerRow } from './study-types.ts';

/** Rows per INSERT when a study's trials are written. */
const INSERT_CHUNK = 200;

async function insertRows(tx: SqlRunner, table: string, columns: string[], rows: unknown[][]): Promise<void> {
  for (let start = 0; start < rows.length; start += INSERT_CHUNK) {
    const chunk = rows.slice(start, start + INSERT_CHUNK);
    const values = chunk.map((_, r) => `(${columns.map((__, c) => `$${r * columns.length + c + 1}`).join(', ')})`).join(', ');
    await tx.execute(`INSERT INTO ${table} (${columns.join(', ')}) VALUES ${values}`, chunk.flat());
  }
}

export class Study implements StudyContext {
  readonly rungs: number[];
  readonly sizes: number[];
  readonly promotions: Promotions;
  readonly leases: Leases;
  readonly results: Results;
  readonly reads: StudyReads;

  private constructor(
    readonly storage: Storage,
    readonly name: string,
    readonly settings: SearchSettings,
    readonly graceMs: number,
    readonly trialCount: number,
  ) {
    this.rungs = rungEpochs(settings.minEpochs, settings.maxEpochs, settings.reductionFactor);
    this.sizes = rungSizes(trialCount, this.rungs.length, settings.reductionFactor);
    this.promotions = new Promotions(this);
    this.leases = new Leases(this, this.promotions);
    this.results = new Results(this, this.promotions);
    this.reads = new StudyReads(this);
  }

  get halving(): Halving {
    return this.settings.halving;
  }

  /**
   * Creates the study with its trials, every trial waiting at rung 0, or finds it. `created`
   * says which; the caller compares the settings of a study found. Halving left open is this
   * database's default (settings.ts: resolveSettings).
   */
  static async create(storage: Storage, name: string, request: SearchRequest, trials: TrialRow[], graceMs = DEFAULT_GRACE_MS): Promise<{ study: Study; created: boolean }> {
    const settings = resolveSettings(request, storage.dialect.engine);
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

  /** A new grace period for the study's heartbeats (workers already running keep theirs). */
  async setGrace(graceMs: number): Promise<Study> {
    await this.storage.execute('UPDATE studies SET grace_ms = $2 WHERE name = $1', [this.name, graceMs]);
    return Study.load(this.storage, this.name);
  }

  /** True when nothing is left to train: no job waiting or running, and no promotion to make. */
  async finished(): Promise<boolean> {
    return (await this.promotions.all()) === 0 && (await this.leases.unfinishedJobs()) === 0;
  }

  /** Removes the study and everything it holds from the database (benchmarks clean up with it). */
  async delete(): Promise<void> {
    await this.storage.transaction(async (tx) => {
      for (const table of ['results', 'rungs', 'checkpoints', 'files', 'workers', 'jobs', 'trials']) await tx.execute(`DELETE FROM ${table} WHERE study = $1`, [this.name]);
      await tx.execute('DELETE FROM studies WHERE name = $1', [this.name]);
    });
  }
}
