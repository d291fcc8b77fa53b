/**
 * The search database's tables, the same in SQLite and PostgreSQL. A database holds any number
 * of studies; every row names its study. Times are the database clock in milliseconds.
 *
 *   schema_version  one row: the version of these tables; a process of another version refuses the database
 *   studies         a study's settings (JSON), the grace period of its heartbeats, its final test figures
 *   trials          each trial's hyperparameters (JSON)
 *   jobs            one row per (trial, rung) to train: waiting, running or done; its claims so far
 *                   (attempt), the last claim's worker, checkpointed epoch it started from, heartbeat
 *   rungs           each rung's count of results (a count(*) of results costs time in proportion to them)
 *   results         each (trial, rung) result, recorded once (its primary key)
 *   checkpoints     each trial's latest checkpoint (bytes), so that any worker can continue it
 *   files           a finished trial's model (model.json, model.safetensors) as bytes
 *   workers         every worker seen: host, process, last heartbeat
 */
import { UserError } from '../errors.ts';
import { VERSION } from '../version.ts';
import type { SqlDialect, Storage } from './storage.ts';

/** Bump when a table changes: processes of another version then refuse the database with one line. */
export const SCHEMA_VERSION = 1;

function tables(d: SqlDialect): string[] {
  return [
    'CREATE TABLE schema_version (version INTEGER NOT NULL)',
    `CREATE TABLE studies (
      name TEXT PRIMARY KEY, settings TEXT NOT NULL, software TEXT NOT NULL, grace_ms BIGINT NOT NULL,
      created_at BIGINT NOT NULL, final TEXT)`,
    `CREATE TABLE trials (
      study TEXT NOT NULL REFERENCES studies (name), id INTEGER NOT NULL, params TEXT NOT NULL,
      PRIMARY KEY (study, id))`,
    `CREATE TABLE jobs (
      study TEXT NOT NULL, trial INTEGER NOT NULL, rung INTEGER NOT NULL, state TEXT NOT NULL,
      worker TEXT, attempt INTEGER NOT NULL DEFAULT 0, from_epoch INTEGER, claimed_at BIGINT, heartbeat_at BIGINT,
      PRIMARY KEY (study, trial, rung), FOREIGN KEY (study, trial) REFERENCES trials (study, id))`,
    // Partial indexes of the waiting jobs, in claiming order, and of the running ones by worker
    // (heartbeats): each holds only the few rows its queries look for, and the planner cannot
    // mistake them for the primary key. heartbeat_at is in no index, so a heartbeat rewrites none.
    "CREATE INDEX jobs_waiting ON jobs (study, rung DESC, trial) WHERE state = 'waiting'",
    "CREATE INDEX jobs_running ON jobs (study, worker) WHERE state = 'running'",
    `CREATE TABLE rungs (
      study TEXT NOT NULL, rung INTEGER NOT NULL, results INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (study, rung))`,
    `CREATE TABLE results (
      study TEXT NOT NULL, trial INTEGER NOT NULL, rung INTEGER NOT NULL, epochs INTEGER NOT NULL,
      val_accuracy ${d.double}, val_loss ${d.double}, best_epoch INTEGER, seconds ${d.double} NOT NULL,
      history TEXT NOT NULL, failure TEXT, worker TEXT NOT NULL, recorded_at BIGINT NOT NULL,
      PRIMARY KEY (study, trial, rung))`,
    // Promotions: a rung's results best first.
    'CREATE INDEX results_by_rank ON results (study, rung, val_accuracy DESC, trial)',
    `CREATE TABLE checkpoints (
      study TEXT NOT NULL, trial INTEGER NOT NULL, epochs INTEGER NOT NULL, data ${d.bytes} NOT NULL,
      saved_at BIGINT NOT NULL, PRIMARY KEY (study, trial))`,
    `CREATE TABLE files (
      study TEXT NOT NULL, trial INTEGER NOT NULL, name TEXT NOT NULL, data ${d.bytes} NOT NULL,
      PRIMARY KEY (study, trial, name))`,
    `CREATE TABLE workers (
      study TEXT NOT NULL, id TEXT NOT NULL, host TEXT NOT NULL, pid INTEGER NOT NULL, software TEXT NOT NULL,
      started_at BIGINT NOT NULL, heartbeat_at BIGINT NOT NULL, PRIMARY KEY (study, id))`,
  ];
}

async function tableExists(storage: Storage, name: string): Promise<boolean> {
  return (await storage.query(storage.dialect.tableExists, [name])).length > 0;
}

async function storedVersion(storage: Storage): Promise<number | null> {
  if (!(await tableExists(storage, 'schema_version'))) {
    // The journal of the first searches (one SQLite file per search folder) had a meta table, and no version.
    if (storage.dialect.engine === 'sqlite' && (await tableExists(storage, 'meta'))) {
      throw new UserError(`${storage.location} holds a search journal of an older fmnist, before schema versions; continue it with that version, or choose another --out.`);
    }
    return null;
  }
  const rows = await storage.query<{ version: number }>('SELECT version FROM schema_version');
  return rows.length === 0 ? null : Number(rows[0].version);
}

function checkVersion(storage: Storage, version: number): void {
  if (version < SCHEMA_VERSION) {
    throw new UserError(`${storage.location} holds search tables of schema version ${version}, older than this fmnist's (${SCHEMA_VERSION}); finish its studies with the fmnist that made them, or use another database.`);
  }
  if (version > SCHEMA_VERSION) {
    throw new UserError(`${storage.location} holds search tables of schema version ${version}, newer than this fmnist's (${SCHEMA_VERSION}, fmnist ${VERSION}); update fmnist on this machine.`);
  }
}

/**
 * Checks the database's schema version, creating the tables first where there are none and
 * `create` is set. Another version is a one-line error, before anything is written.
 */
export async function ensureSchema(storage: Storage, create: boolean): Promise<void> {
  const version = await storedVersion(storage);
  if (version !== null) return checkVersion(storage, version);
  if (!create) throw new UserError(`${storage.location} holds no fmnist search; start one with fmnist search MODEL --storage ${storage.location}.`);
  await storage.transaction(async (tx) => {
    if (storage.dialect.schemaLock) await tx.query(storage.dialect.schemaLock);
    // Another process may have created them while we waited for the lock.
    if ((await tx.query(storage.dialect.tableExists, ['schema_version'])).length > 0) return;
    for (const statement of [...tables(storage.dialect), ...storage.dialect.tableSettings]) await tx.execute(statement);
    await tx.execute('INSERT INTO schema_version (version) VALUES ($1)', [SCHEMA_VERSION]);
  }, { durable: true });
  const created = await storedVersion(storage);
  if (created !== null) checkVersion(storage, created);
}
