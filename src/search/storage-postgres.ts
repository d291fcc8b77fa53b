/**
 * The PostgreSQL engine of the search storage (pg): a small pool of connections per process.
 * Workers on any number of machines share one database; PostgreSQL's row locks (FOR UPDATE
 * SKIP LOCKED) keep two of them from claiming one job.
 */
import { createHash } from 'node:crypto';
import pg from 'pg';
import { UserError } from '../errors.ts';
import { redactUrl, type Row, type SqlDialect, type SqlRunner, type Storage } from './storage.ts';

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

function runner(client: pg.Pool | pg.PoolClient, location: string): SqlRunner {
  const wrap = async <T>(work: () => Promise<T>): Promise<T> => {
    try {
      return await work();
    } catch (error) {
      if (isConnectionError(error)) throw new UserError(`Lost the connection to the PostgreSQL database ${location} (${(error as Error).message}).`);
      throw error;
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

  async transaction<T>(work: (tx: SqlRunner) => Promise<T>, options: { durable?: boolean } = {}): Promise<T> {
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (error) {
      throw new UserError(`Lost the connection to the PostgreSQL database ${this.location} (${(error as Error).message}).`);
    }
    const tx = runner(client, this.location);
    let broken: Error | undefined;
    try {
      // One round trip: the session's commits do not wait for the disk, a durable transaction's do.
      await tx.execute(options.durable ? 'BEGIN; SET LOCAL synchronous_commit = on' : 'BEGIN');
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
  const pool = new pg.Pool({ connectionString: relaxedSessions(url), max: connections, connectionTimeoutMillis: 10_000, application_name: 'fmnist search', types });
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
