import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { TestContext } from 'node:test';
import pg from 'pg';

/**
 * The PostgreSQL server of the distributed search's tests: FMNIST_TEST_POSTGRES_URL, e.g.
 * postgresql://postgres@127.0.0.1:54320/fmnist (`scripts/test-postgres.sh run npm test` starts a
 * throwaway one; see docs/search.md for an existing server). Without it these tests skip with a
 * message, unless FMNIST_REQUIRE_POSTGRES=1 (CI), which makes its absence a failure.
 */
export const POSTGRES_URL = process.env.FMNIST_TEST_POSTGRES_URL;

/**
 * A URL of the test server whose connections see only a fresh schema (namespace) of their own,
 * dropped when the test ends: tests running at once never see each other's tables. Null (the
 * test is skipped) without a server.
 */
export async function postgresForTest(t: TestContext): Promise<string | null> {
  if (!POSTGRES_URL) {
    assert.notEqual(process.env.FMNIST_REQUIRE_POSTGRES, '1', 'FMNIST_REQUIRE_POSTGRES=1 but FMNIST_TEST_POSTGRES_URL is not set');
    t.skip('no PostgreSQL: set FMNIST_TEST_POSTGRES_URL (scripts/test-postgres.sh run npm test starts one)');
    return null;
  }
  const schema = `fmnist_test_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: POSTGRES_URL });
  await admin.connect();
  try {
    await admin.query(`CREATE SCHEMA ${schema}`);
  } finally {
    await admin.end();
  }
  t.after(async () => {
    const client = new pg.Client({ connectionString: POSTGRES_URL });
    await client.connect();
    try {
      await client.query(`DROP SCHEMA ${schema} CASCADE`);
    } finally {
      await client.end();
    }
  });
  const url = new URL(POSTGRES_URL);
  url.searchParams.set('options', `-c search_path=${schema}`);
  return url.toString();
}
