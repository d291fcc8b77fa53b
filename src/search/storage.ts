/**
 * Where a search keeps its studies: one SQL interface over two engines. SQLite (better-sqlite3,
 * `search.sqlite` in the search folder) serves one machine; PostgreSQL (pg) serves workers on
 * many machines. Both hold the same tables (schema.ts), and every query is written once, above
 * this interface (study.ts): the engines differ only in the few words SqlDialect names.
 */
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { openPostgres } from './storage-postgres.ts';
import { SqliteStorage } from './storage-sqlite.ts';

export type Row = Record<string, unknown>;

/**
 * Durability. Most of a study's writes can be lost in a crash of the database without harm: a
 * claim, a heartbeat, a checkpoint, a promotion is made again (from the results, or by the next
 * claim). PostgreSQL commits those without waiting for the disk, which is most of a write's
 * time; results, a study's creation and its final figures are written in durable transactions,
 * whose commit waits for the disk. SQLite waits for the disk at every commit.
 */
export interface SqlRunner {
  /** The rows of a SELECT, or of a statement with RETURNING. Parameters are written $1, $2, ... */
  query<T extends Row = Row>(sql: string, params?: readonly unknown[]): Promise<T[]>;
  /** Runs a statement without RETURNING; gives the number of rows it changed. */
  execute(sql: string, params?: readonly unknown[]): Promise<number>;
}

/** The database engines a study can live in. */
export type Engine = 'sqlite' | 'postgresql';

/** What differs between the engines, as SQL text spliced into the shared queries. */
export interface SqlDialect {
  /** Which engine this is: the one place the rest of the search learns it (never from the location's text). */
  engine: Engine;
  /** The database's clock in whole milliseconds since 1970: every machine's heartbeats are compared on one clock. */
  now: string;
  /**
   * Ends the SELECT that picks a job to claim. PostgreSQL: FOR UPDATE SKIP LOCKED, so concurrent
   * claimers each lock a different row without waiting. SQLite: nothing, since a write
   * transaction locks the whole file (one claimer at a time).
   */
  skipLocked: string;
  /** Column types: a float64 (PostgreSQL's REAL is float32) and raw bytes. */
  double: string;
  bytes: string;
  /** A query giving one row when the table named $1 exists. */
  tableExists: string;
  /** Run after the tables are created: engine settings of the same tables. */
  tableSettings: string[];
  /** Run first in the transaction that creates the tables, so that two workers cannot both create them; null where the transaction already excludes others. */
  schemaLock: string | null;
}

/** One statement of a batch: SQL text with $1, $2, ... parameters. */
export interface Statement {
  sql: string;
  params?: readonly unknown[];
}

/** What one statement of a batch gave: its rows (a SELECT, or RETURNING) and the number of rows it changed. */
export interface StatementResult {
  rows: Row[];
  changes: number;
}

export interface Storage extends SqlRunner {
  readonly dialect: SqlDialect;
  /** For messages: the file, or the URL without its password. */
  readonly location: string;
  /** Runs `work` in one transaction: committed when it resolves, rolled back when it throws. `durable`: the commit waits for the disk. */
  transaction<T>(work: (tx: SqlRunner) => Promise<T>, options?: { durable?: boolean }): Promise<T>;
  /**
   * Runs the statements one after another, each seeing what those before it changed, and sends
   * them together: PostgreSQL pipelines them, one round trip for all, where one statement at a
   * time waits a round trip each (most of a small statement's time, and of the processor time
   * of both sides). No statement can depend on another's answer in JavaScript: a condition
   * between them is written in SQL. `transaction`: all of them in one transaction, committed
   * when every one succeeds (`durable` as for transaction()); otherwise each is committed alone.
   * Gives each statement's result, in order; throws the first error.
   */
  batch(statements: readonly Statement[], options?: { transaction?: boolean; durable?: boolean }): Promise<StatementResult[]>;
  close(): Promise<void>;
}

export const SQLITE_FILE = 'search.sqlite';

export function isPostgresUrl(location: string): boolean {
  return /^postgres(ql)?:\/\//i.test(location);
}

/** A PostgreSQL URL with its password hidden, for messages and logs. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return url.replace(/:[^:@/]*@/, ':***@');
  }
}

/** A folder stands for the search.sqlite inside it. */
export function sqlitePath(location: string): string {
  return existsSync(location) && statSync(location).isDirectory() ? join(location, SQLITE_FILE) : location;
}

export interface OpenOptions {
  /** Create the SQLite file, and its folder, if absent (a new search); otherwise a missing file is an error. */
  create?: boolean;
  /** PostgreSQL: connections this process may open at once. */
  connections?: number;
}

/** Opens a postgresql:// (or postgres://) URL, or an SQLite file (or a search folder holding search.sqlite). */
export async function openStorage(location: string, options: OpenOptions = {}): Promise<Storage> {
  if (isPostgresUrl(location)) {
    return openPostgres(location, options.connections ?? 4);
  }
  return new SqliteStorage(sqlitePath(location), options.create ?? false);
}
