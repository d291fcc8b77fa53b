/**
 * The SQLite engine of the search storage (better-sqlite3): one file, for the workers of one
 * machine. better-sqlite3 is synchronous; the asynchronous interface only orders this process's
 * transactions one after another. Other processes on the file wait for its write lock (WAL mode,
 * a 10-second busy timeout), and every commit waits for the disk (synchronous = FULL, so every
 * transaction is durable), so a process killed at any moment keeps all it had committed.
 */
import Database from 'better-sqlite3';
import { existsSync } from 'node:fs';
import { dirname } from 'node:path';
import { UserError } from '../errors.ts';
import { makeFolder } from '../io/atomic.ts';
import type { Row, SqlDialect, SqlRunner, Statement, StatementResult, Storage } from './storage.ts';

const DIALECT: SqlDialect = {
  engine: 'sqlite',
  now: "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)",
  skipLocked: '',
  double: 'REAL',
  bytes: 'BLOB',
  tableExists: "SELECT name FROM sqlite_master WHERE type = 'table' AND name = $1",
  tableSettings: [],
  schemaLock: null,
};

/** better-sqlite3 binds `?` by position: $n placeholders become `?` with the parameters reordered to match. */
function positional(sql: string, params: readonly unknown[]): { text: string; values: unknown[] } {
  const values: unknown[] = [];
  const text = sql.replace(/\$(\d+)/g, (_, index: string) => {
    const value = params[Number(index) - 1];
    // better-sqlite3 takes bytes as a Buffer only.
    values.push(value instanceof Uint8Array && !Buffer.isBuffer(value) ? Buffer.from(value.buffer, value.byteOffset, value.byteLength) : value);
    return '?';
  });
  return { text, values };
}

export class SqliteStorage implements Storage {
  readonly dialect = DIALECT;
  private readonly db: Database.Database;
  private readonly statements = new Map<string, Database.Statement>();
  /** This process's operations, one after another: a transaction holds the connection until it ends. */
  private queue: Promise<unknown> = Promise.resolve();
  private readonly direct: SqlRunner = {
    query: async <T extends Row>(sql: string, params: readonly unknown[] = []) => this.run(sql, params).rows as T[],
    execute: async (sql: string, params: readonly unknown[] = []) => this.run(sql, params).changes,
  };

  constructor(
    readonly location: string,
    create: boolean,
  ) {
    if (!create && !existsSync(location)) throw new UserError(`${location} does not exist; pass the search.sqlite of a search (or its folder), or a postgresql:// URL.`);
    if (create) makeFolder(dirname(location));
    try {
      this.db = new Database(location);
      this.db.pragma('busy_timeout = 10000');
      this.db.pragma('journal_mode = WAL');
      this.db.pragma('synchronous = FULL');
    } catch (error) {
      throw new UserError(`Cannot open the search database ${location} (${error instanceof Error ? error.message : String(error)}).`);
    }
  }

  private run(sql: string, params: readonly unknown[]): StatementResult {
    const { text, values } = positional(sql, params);
    let statement = this.statements.get(text);
    if (!statement) {
      statement = this.db.prepare(text);
      this.statements.set(text, statement);
    }
    if (statement.reader) {
      // A SELECT, or a write with RETURNING: one row per row it changed, as PostgreSQL counts them.
      const rows = statement.all(...values) as Row[];
      return { rows, changes: rows.length };
    }
    return { rows: [], changes: statement.run(...values).changes };
  }

  private exclusive<T>(work: () => Promise<T>): Promise<T> {
    const result = this.queue.then(work);
    this.queue = result.catch(() => undefined);
    return result;
  }

  query<T extends Row = Row>(sql: string, params: readonly unknown[] = []): Promise<T[]> {
    return this.exclusive(() => this.direct.query<T>(sql, params));
  }

  execute(sql: string, params: readonly unknown[] = []): Promise<number> {
    return this.exclusive(() => this.direct.execute(sql, params));
  }

  transaction<T>(work: (tx: SqlRunner) => Promise<T>): Promise<T> {
    return this.exclusive(async () => {
      // IMMEDIATE takes the write lock at once, so two processes never both read, then both write.
      this.db.exec('BEGIN IMMEDIATE');
      try {
        const result = await work(this.direct);
        this.db.exec('COMMIT');
        return result;
      } catch (error) {
        if (this.db.inTransaction) this.db.exec('ROLLBACK');
        throw error;
      }
    });
  }

  /** In process, a batch is only its statements one after another (in a transaction if asked: every commit here is durable). */
  batch(statements: readonly Statement[], options: { transaction?: boolean } = {}): Promise<StatementResult[]> {
    const runAll = async () => statements.map((s) => this.run(s.sql, s.params ?? []));
    return options.transaction ? this.transaction(runAll) : this.exclusive(runAll);
  }

  async close(): Promise<void> {
    await this.queue;
    this.db.close();
  }
}
