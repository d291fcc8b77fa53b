/**
 * The PostgreSQL engine of the search storage (pg): a small pool of connections per process.
 * Workers on any number of machines share one database; PostgreSQL's row locks (FOR UPDATE
 * SKIP LOCKED) keep two of them from claiming one job.
 */
import { createHash } from 'node:crypto';
import pg from 'pg';
import { UserError } from '../errors.ts';
import { redactUrl, type Row, type SqlDialect, type SqlRunner, type Statement, type StatementResult, type Storage } from './storage.ts';

const DIALECT: SqlDialect = {
  engine: 'postgresql',
  now: '(extract(epoch from clock_timestamp()) * 1000)::bigint',
  skipLocked: 'FOR UPDATE SKIP LOCKED',
  double: 'DOUBLE PRECISION',
  bytes: 'BYTEA',
  tableExists: 'SELECT to_regclass($1) AS name WHERE to_regclass($1) IS NOT NULL',
  // Any fixed key: creating the tables is the only use of this advisory lock.
  // Checkpoints and weights are float32 bytes that compression barely shrinks: storing them
  // uncompressed halves an upload's time (a 6.7 MB checkpoint: 126 ms compressed, 53 ms not).
  tableSettings: ['ALTER TABLE checkpoints ALTER COLUMN data SET STORAGE EXTERNAL', 'ALTER TABLE files ALTER COLUMN data SET STORAGE EXTERNAL'],
  schemaLock: 'SELECT pg_advisory_xact_lock(727001)',
};

/** 64-bit integers (counts, millisecond times) as numbers: they stay far below 2^53. */
const INT8_OID = 20;
const types = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === INT8_OID ? Number : pg.types.getTypeParser(oid, format ?? 'text')) as typeof pg.types.getTypeParser,
};

/** Errors that mean the server is gone or unreachable, rather than a bad query. */
function isConnectionError(error: unknown): boolean {
  const code = (error as { code?: string }).code ?? '';
  const message = error instanceof Error ? error.message : '';
  return /^(ECONN|ETIMEDOUT|ENOTFOUND|EAI_|EHOSTUNREACH|ENETUNREACH|57P0|08)/.test(code) || /Connection terminated|timeout expired|connection is closed/i.test(message);
}

/**
 * Statements with parameters are prepared once per connection under a name derived from their
 * text: the server then parses and plans each of the few statements a search uses once, not at
 * every call (most of a claim's cost on the server).
 */
const statementNames = new Map<string, string>();
function statement(sql: string, params: readonly unknown[]): pg.QueryConfig {
  if (params.length === 0) return { text: sql };
  let name = statementNames.get(sql);
  if (!name) {
    name = `fmnist_${createHash('sha1').update(sql).digest('hex').slice(0, 20)}`;
    statementNames.set(sql, name);
  }
  return { name, text: sql, values: [...params] };
}

/** The error a lost connection becomes (a bad query's error goes on as it is). */
function connectionLost(error: unknown, location: string): unknown {
  return isConnectionError(error) ? new UserError(`Lost the connection to the PostgreSQL database ${location} (${(error as Error).message}).`) : error;
}

/** The first statement of a transaction: the session's commits do not wait for the disk, a durable transaction's do. */
function begin(durable: boolean | undefined): string {
  return durable ? 'BEGIN; SET LOCAL synchronous_commit = on' : 'BEGIN';
}

function runner(client: pg.Pool | pg.PoolClient, location: string): SqlRunner {
  const wrap = async <T>(work: () => Promise<T>): Promise<T> => {
    try {
      return await work();
    } catch (error) {
      throw connectionLost(error, location);
    }
  };
  return {
    query: <T extends Row>(sql: string, params: readonly unknown[] = []) => wrap(async () => (await client.query(statement(sql, params))).rows as T[]),
    execute: (sql: string, params: readonly unknown[] = []) => wrap(async () => (await client.query(statement(sql, params))).rowCount ?? 0),
  };
}

class PostgresStorage implements Storage {
  readonly dialect = DIALECT;
  private readonly direct: SqlRunner;

  constructor(
    private readonly pool: pg.Pool,
    readonly location: string,
  ) {
    this.direct = runner(pool, location);
  }

  query<T extends Row = Row>(sql: string, params: readonly unknown[] = []): Promise<T[]> {
    return this.direct.query<T>(sql, params);
  }

  execute(sql: string, params: readonly unknown[] = []): Promise<number> {
    return this.direct.execute(sql, params);
  }

  private async connect(): Promise<pg.PoolClient> {
    try {
      return await this.pool.connect();
    } catch (error) {
      throw new UserError(`Lost the connection to the PostgreSQL database ${this.location} (${(error as Error).message}).`);
    }
  }

  async transaction<T>(work: (tx: SqlRunner) => Promise<T>, options: { durable?: boolean } = {}): Promise<T> {
    const client = await this.connect();
    const tx = runner(client, this.location);
    let broken: Error | undefined;
    try {
      await tx.execute(begin(options.durable));
      const result = await work(tx);
      await tx.execute('COMMIT');
      return result;
    } catch (error) {
      try {
        await client.query('ROLLBACK');
      } catch (rollback) {
        broken = rollback as Error;
      }
      throw error;
    } finally {
      // A connection whose rollback failed is discarded rather than handed to the next caller.
      client.release(broken);
    }
  }

  async batch(statements: readonly Statement[], options: { transaction?: boolean; durable?: boolean } = {}): Promise<StatementResult[]> {
    const client = await this.connect();
    let configs: pg.QueryConfig[] = statements.map((s) => statement(s.sql, s.params ?? []));
    // In a transaction, a failed statement makes the ones after it fail too, and COMMIT then rolls back.
    if (options.transaction) configs = [{ text: begin(options.durable) }, ...configs, { text: 'COMMIT' }];
    // The pool's connections pipeline: every query is sent before the first answer comes back.
    // Corked, the queries leave in one write, which wakes the server once rather than per query.
    const { stream } = client.connection;
    stream.cork();
    const answers = configs.map((config) => client.query(config));
    stream.uncork();
    const settled = await Promise.allSettled(answers);
    const failed = settled.find((outcome) => outcome.status === 'rejected');
    // A connection that failed is discarded rather than handed to the next caller.
    client.release(failed && isConnectionError(failed.reason) ? (failed.reason as Error) : undefined);
    if (failed) throw connectionLost(failed.reason, this.location);
    const results = settled.map((outcome) => (outcome as PromiseFulfilledResult<pg.QueryResult>).value);
    return (options.transaction ? results.slice(1, -1) : results).map((result) => ({ rows: result.rows as Row[], changes: result.rowCount ?? 0 }));
  }

  close(): Promise<void> {
    return this.pool.end();
  }
}

/**
 * The URL with the sessions' commits not waiting for the disk unless a transaction asks to be
 * durable (storage.ts): a setting given at connection, added to the URL's own `options`.
 */
function relaxedSessions(url: string): string {
  const parsed = new URL(url);
  parsed.searchParams.set('options', `${parsed.searchParams.get('options') ?? ''} -c synchronous_commit=off`.trim());
  return parsed.toString();
}

/** Connects (and checks the connection) at once, so that a wrong URL is one line before anything else happens. */
export async function openPostgres(url: string, connections: number): Promise<Storage> {
  const location = redactUrl(url);
  const pool = new pg.Pool({ connectionString: relaxedSessions(url), max: connections, pipeline: true, connectionTimeoutMillis: 10_000, application_name: 'fmnist search', types });
  // An idle connection that the server drops is replaced at the next query; without a listener the process would exit.
  pool.on('error', () => undefined);

  try {
    await pool.query('SELECT 1');
  } catch (error) {
    await pool.end().catch(() => undefined);
    throw new UserError(`Cannot reach the PostgreSQL database ${location} (${(error as Error).message || (error as { code?: string }).code}); check the URL and that the server is running.`);
  }
  return new PostgresStorage(pool, location);
}
