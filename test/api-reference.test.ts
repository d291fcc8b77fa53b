import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { API_DIR, apiReference } from '../scripts/api-reference.ts';

test('docs/api/ is the TypeDoc reference of src/index.ts as it is now (npm run docs:api writes it)', async () => {
  const current = await apiReference();
  const written = readdirSync(API_DIR);
  assert.deepEqual(written.sort(), [...current.keys()].sort(), 'docs/api/ holds other files than TypeDoc writes: run npm run docs:api');
  for (const [name, content] of current) {
    assert.equal(readFileSync(join(API_DIR, name), 'utf8'), content, `docs/api/${name} is out of date: run npm run docs:api`);
  }
});
