import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import * as library from '../src/index.ts';

const source = readFileSync(new URL('../src/index.ts', import.meta.url), 'utf8');

test('the library exports at most 50 names, each export statement under a doc comment', () => {
  const statements = source.split('\n').filter((line) => line.startsWith('export '));
  const names = statements.flatMap((line) => line.replace(/^export (type )?\{ /, '').replace(/ \} from .*$/, '').split(', '));
  assert.ok(names.length <= 50, `${names.length} names exported`);
  // Every value export is really there.
  for (const line of statements.filter((statement) => !statement.startsWith('export type'))) {
    for (const name of line.replace(/^export \{ /, '').replace(/ \} from .*$/, '').split(', ')) assert.ok(name in library, name);
  }
  // Each export statement follows a doc comment, or another export statement that does.
  const lines = source.split('\n');
  lines.forEach((line, i) => {
    if (!line.startsWith('export ')) return;
    let j = i - 1;
    while (lines[j].startsWith('export ')) j--;
    assert.match(lines[j], /\*\/$/, `no doc comment above: ${line}`);
  });
});
