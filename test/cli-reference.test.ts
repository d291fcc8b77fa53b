import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { cliReference } from '../scripts/cli-reference.ts';

test('docs/cli.md is the CLI help of every command as it is now (npm run docs:cli writes it)', async () => {
  assert.equal(readFileSync(new URL('../docs/cli.md', import.meta.url), 'utf8'), await cliReference(), 'docs/cli.md is out of date: run npm run docs:cli');
});
