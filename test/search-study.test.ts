import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import Database from 'better-sqlite3';
import { UserError } from '../src/errors.ts';
import { compareResults, promotionQuota, promotionScope, trialsToPromote, type Halving, type RungStanding } from '../src/search/halving.ts';
import { SCHEMA_VERSION } from '../src/search/schema.ts';
import { searchSettings } from '../src/search/settings.ts';
import { openStorage, type Storage } from '../src/search/storage.ts';
import { Study, type JobLease } from '../src/search/study.ts';
import type { RungResult } from '../src/search/trial.ts';
import { encodeCheckpoint } from '../src/training/checkpoint.ts';
import { isOneLineError, runCli } from './helpers/cli.ts';
import { tempDir } from './helpers/idx-files.ts';
import { postgresForTest } from './helpers/postgres.ts';

test('synchronous halving promotes a rung\'s best only once the rung is complete; asynchronous promotes the top 1/eta so far', () => {
  assert.equal(promotionQuota('sync', 3, { results: 29, pending: 1, nextSize: 10 }), 0);
  assert.equal(promotionQuota('sync', 3, { results: 30, pending: 0, nextSize: 10 }), 10);
  assert.equal(promotionQuota('async', 3, { results: 2, pending: 28, nextSize: 10 }), 0);
  assert.equal(promotionQuota('async', 3, { results: 3, pending: 27, nextSize: 10 }), 1);
  assert.equal(promotionQuota('async', 3, { results: 17, pending: 13, nextSize: 10 }), 5);

  // Diverged trials never go on; ties go to the earlier trial; a promoted trial is not promoted again.
  const standings: RungStanding[] = [
    { trial: 4, valAccuracy: 0.8 },
    { trial: 1, valAccuracy: null },
    { trial: 2, valAccuracy: 0.8 },
    { trial: 3, valAccuracy: 0.9 },
  ];
  assert.deepEqual(trialsToPromote(standings, new Set(), 3), [3, 2, 4]);
  assert.deepEqual(trialsToPromote(standings, new Set([3]), 2), [2]);
  assert.deepEqual(trialsToPromote(standings, new Set(), 10), [3, 2, 4]);
  assert.deepEqual([...standings].sort(compareResults).map((s) => s.trial), [3, 2, 4, 1]);

  // ASHA over results arriving one at a time (eta 3): each arrival promotes the top floor(n/3)
  // not yet promoted. Worked by hand: n=3 promotes trial 1 (0.7); n=4, trial 3 (0.9) now leads;
  // n=5 changes nothing; n=6 adds trial 5 (0.8). Trial 1 stays promoted though the final top two
  // are 3 and 5: asynchronous halving may promote more trials than synchronous, never fewer.
  const arrivals: RungStanding[] = [0.5, 0.7, 0.6, 0.9, 0.4, 0.8].map((valAccuracy, trial) => ({ trial, valAccuracy }));
  const promoted = new Set<number>();
  const steps: number[][] = [];
  for (let n = 1; n <= arrivals.length; n++) {
    const chosen = trialsToPromote(arrivals.slice(0, n), promoted, promotionQuota('async', 3, { results: n, pending: arrivals.length - n, nextSize: 2 }));
    for (const trial of chosen) promoted.add(trial);
    steps.push(chosen);
  }
  assert.deepEqual(steps, [[], [], [1], [3], [], [5]]);
  // The same promotions, looking after each result at the new result and, when the quota grew,
  // at the trial in the quota's last place: what a study does instead of ranking the whole rung.
  const incremental = new Set<number>();
  for (let n = 1; n <= arrivals.length; n++) {
    const quota = promotionQuota('async', 3, { results: n, pending: 0, nextSize: 2 });
    const ranked = [...arrivals.slice(0, n)].sort(compareResults);
    if (ranked.indexOf(arrivals[n - 1]) < quota) incremental.add(arrivals[n - 1].trial);
    if (promotionScope('async', 3, n) === 'new-and-boundary') incremental.add(ranked[quota - 1].trial);
  }
  assert.deepEqual([...incremental].sort(), [...promoted].sort());
  assert.deepEqual([1, 2, 3, 4, 5, 6].map((n) => promotionScope('async', 3, n)), ['new', 'new', 'new-and-boundary', 'new', 'new', 'new-and-boundary']);
  assert.equal(promotionScope('sync', 3, 4), 'top');
  assert.deepEqual(trialsToPromote(arrivals, new Set(), promotionQuota('sync', 3, { results: 6, pending: 0, nextSize: 2 })), [3, 5]);
});

/** A test's database of each engine: an SQLite file, and the test server's PostgreSQL when there is one. */
const ENGINES = ['sqlite', 'postgresql'] as const;

async function storageFor(t: TestContext, engine: (typeof ENGINES)[number]): Promise<{ storage: Storage; location: string } | null> {
  const location = engine === 'sqlite' ? join(tempDir(), 'search.sqlite') : await postgresForTest(t);
  if (location === null) return null;
  const storage = await openStorage(location, { create: true, connections: 8 });
  t.after(() => storage.close());
  return { storage, location };
}

/** A made-up validation accuracy: distinct per trial, rising with the rung, so every trial keeps its rank; every 11th trial diverges. */
function fakeAccuracy(trial: number, rung: number): number | null {
  if (trial % 11 === 5) return null;
  return 0.4 + (((trial * 7919) % 101) / 101) * 0.5 + rung * 0.01;
}

function fakeResult(lease: JobLease, epochs: number): RungResult {
  const valAccuracy = fakeAccuracy(lease.trial, lease.rung);
  return { trial: lease.trial, rung: lease.rung, epochs, valAccuracy, valLoss: valAccuracy === null ? null : 1 - valAccuracy, bestEpoch: valAccuracy === null ? null : epochs, seconds: 0, history: [], failure: valAccuracy === null ? 'diverged' : null };
}

const trials = (count: number) => Array.from({ length: count }, (_, id) => ({ id, params: { hidden: 64 + id } }));

for (const engine of ENGINES) {
  for (const halving of ['sync', 'async'] as Halving[]) {
    test(`${engine}, ${halving} halving: six workers at once claim every job once, record every result once, and promote by the rule`, async (t) => {
      const opened = await storageFor(t, engine);
      if (!opened) return;
      const settings = searchSettings('mlp', { trials: 30, minEpochs: 1, maxEpochs: 9, reductionFactor: 3, halving });
      const { study, created } = await Study.create(opened.storage, 'many', settings, trials(30));
      assert.ok(created);
      assert.deepEqual(study.rungs, [1, 3, 9]);
      // Workers without work: claim, heartbeat, record; the engine's locks alone keep them apart.
      const work = async (worker: string) => {
        for (;;) {
          const claim = await study.leases.claim(worker);
          if (claim.type === 'done') return;
          if (claim.type === 'wait') {
            await new Promise((resolve) => setTimeout(resolve, 5));
            continue;
          }
          const held = await study.leases.heartbeat(worker);
          assert.ok(held.some((job) => job.trial === claim.lease.trial && job.rung === claim.lease.rung));
          assert.equal(await study.results.record(claim.lease, fakeResult(claim.lease, study.rungs[claim.lease.rung])), true);
        }
      };
      await Promise.all(Array.from({ length: 6 }, (_, i) => work(`worker-${i}`)));

      const results = await study.reads.results();
      const jobs = await study.reads.jobs();
      const keys = results.map((r) => `${r.trial}/${r.rung}`);
      assert.equal(new Set(keys).size, keys.length, 'no result recorded twice');
      assert.ok(jobs.every((job) => job.state === 'done' && job.attempt === 1), 'every job claimed once');
      assert.equal(jobs.length, results.length);
      assert.ok(new Set(jobs.map((job) => job.worker)).size > 1, 'the workers shared the jobs');

      // The promotions, checked against a plain sort of each rung's results.
      for (let rung = 0; rung < 2; rung++) {
        const here = results.filter((r) => r.rung === rung);
        const next = new Set(results.filter((r) => r.rung === rung + 1).map((r) => r.trial));
        const ranked = here.filter((r) => r.valAccuracy !== null).sort((a, b) => b.valAccuracy! - a.valAccuracy! || a.trial - b.trial).map((r) => r.trial);
        if (halving === 'sync') {
          assert.deepEqual([...next].sort((a, b) => a - b), ranked.slice(0, [10, 3][rung]).sort((a, b) => a - b), `rung ${rung + 1} holds exactly the best of rung ${rung}`);
        } else {
          // No more than synchronous halving's budget for the rung, all of them from the rung's top 1/3 when they went on.
          assert.ok(next.size <= [10, 3][rung] && next.size > 0, `rung ${rung + 1} holds ${next.size} trials`);
          for (const trial of next) assert.notEqual(fakeAccuracy(trial, rung), null, 'a diverged trial never goes on');
        }
      }
    });
  }

  test(`${engine}: one worker alone: the study promotes exactly what asynchronous halving over the whole rung does, result after result`, async (t) => {
    const opened = await storageFor(t, engine);
    if (!opened) return;
    const settings = searchSettings('mlp', { trials: 40, minEpochs: 1, maxEpochs: 9, reductionFactor: 3, halving: 'async' });
    const { study } = await Study.create(opened.storage, 'alone', settings, trials(40));
    const arrivals: RungStanding[][] = [[], [], []];
    for (;;) {
      const claim = await study.leases.claim('alone');
      if (claim.type !== 'job') break;
      const result = fakeResult(claim.lease, study.rungs[claim.lease.rung]);
      arrivals[result.rung].push({ trial: result.trial, valAccuracy: result.valAccuracy });
      await study.results.record(claim.lease, result);
    }
    const jobs = await study.reads.jobs();
    for (let rung = 0; rung < 2; rung++) {
      // The rule over the whole rung, after each arrival in the order the worker recorded them.
      // Within the rung's budget (synchronous halving's size of the next rung), first come first promoted.
      const expected = new Set<number>();
      const budget = study.sizes[rung + 1];
      for (let n = 1; n <= arrivals[rung].length; n++) {
        for (const trial of trialsToPromote(arrivals[rung].slice(0, n), expected, promotionQuota('async', 3, { results: n, pending: 0, nextSize: 0 }))) {
          if (expected.size < budget) expected.add(trial);
        }
      }
      const actual = jobs.filter((job) => job.rung === rung + 1).map((job) => job.trial);
      assert.deepEqual(actual.sort((a, b) => a - b), [...expected].sort((a, b) => a - b), `rung ${rung + 1}`);
    }
  });

  test(`${engine}: a job whose heartbeat is older than the grace period goes to another worker, from the last checkpoint; the late worker's writes change nothing`, async (t) => {
    const opened = await storageFor(t, engine);
    if (!opened) return;
    const settings = searchSettings('mlp', { trials: 3, minEpochs: 2, maxEpochs: 6, halving: 'async' });
    const { study } = await Study.create(opened.storage, 'stale', settings, trials(3), 400);
    const first = await study.leases.claim('slow');
    assert.equal(first.type, 'job');
    const lease = (first as { lease: JobLease }).lease;
    assert.deepEqual([lease.trial, lease.rung, lease.attempt, lease.fromEpoch], [0, 0, 1, 0]);
    const state = { epochsDone: 1, values: new Float32Array([1, 2]), bestValues: new Float32Array([1, 2]), bestEpoch: 1, bestAccuracy: 0.5, optimizer: { steps: 3, buffers: [] }, rngs: [], order: new Int32Array([1, 0]), history: [] };
    assert.equal(await study.leases.saveCheckpoint(lease, 1, encodeCheckpoint(state)), true);

    // Within the grace period the job is not claimable: the next worker gets another one.
    const other = await study.leases.claim('quick');
    assert.equal(other.type === 'job' && other.lease.trial, 1);
    await new Promise((resolve) => setTimeout(resolve, 600));
    await study.leases.heartbeat('quick');
    const takeover = await study.leases.claim('quick');
    assert.ok(takeover.type === 'job');
    assert.deepEqual([takeover.lease.trial, takeover.lease.rung, takeover.lease.attempt, takeover.lease.fromEpoch], [0, 0, 2, 1], 'the job again, second attempt, from epoch 1');
    assert.equal((await study.reads.checkpoint(0))!.epochs, 1);

    // The first worker wakes up: its lease is gone.
    assert.deepEqual(await study.leases.heartbeat('slow'), []);
    assert.equal(await study.leases.saveCheckpoint(lease, 2, encodeCheckpoint({ ...state, epochsDone: 2 })), false);
    assert.equal(await study.results.record(lease, fakeResult(lease, 2)), false);
    assert.equal((await study.reads.checkpoint(0))!.epochs, 1, 'the late checkpoint was not stored');
    assert.equal((await study.reads.results()).length, 0, 'the late result was not recorded');
    assert.equal(await study.results.record(takeover.lease, fakeResult(takeover.lease, 2), { checkpoint: { epochs: 2, data: encodeCheckpoint({ ...state, epochsDone: 2 }) } }), true);
    const results = await study.reads.results();
    assert.deepEqual(results.map((r) => [r.trial, r.rung, r.worker]), [[0, 0, 'quick']]);
    assert.equal((await study.reads.checkpoint(0))!.epochs, 2);
  });

  test(`${engine}: a database of another schema version, or without a study, is refused with one line and left as it was`, async (t) => {
    const opened = await storageFor(t, engine);
    if (!opened) return;
    const { storage, location } = opened;
    await Study.create(storage, 'versioned', searchSettings('mlp', { trials: 2 }), trials(2));
    for (const [version, message] of [
      [SCHEMA_VERSION + 1, /schema version 2, newer than this fmnist's \(1, fmnist [\d.]+\); update fmnist on this machine/],
      [SCHEMA_VERSION - 1, /schema version 0, older than this fmnist's \(1\)/],
    ] as const) {
      await storage.execute('UPDATE schema_version SET version = $1', [version]);
      // A worker of an older fmnist joining a newer database, and a look at an older one.
      const commands = version > SCHEMA_VERSION ? [['search', 'worker', '--storage', location, '--study', 'versioned']] : [['search', 'status', '--storage', location]];
      for (const args of commands) {
        const run = runCli(args);
        assert.equal(run.status, 1, run.stderr);
        assert.ok(isOneLineError(run.stderr), run.stderr);
        assert.match(run.stderr, message);
      }
      assert.deepEqual(await storage.query('SELECT version FROM schema_version'), [{ version }]);
      await assert.rejects(Study.open(storage), (error: Error) => error instanceof UserError && message.test(error.message));
    }
    await storage.execute('UPDATE schema_version SET version = $1', [SCHEMA_VERSION]);
    assert.equal((await Study.open(storage)).name, 'versioned');
    await assert.rejects(Study.open(storage, 'nameless'), (error: Error) => error instanceof UserError && /holds no study "nameless"/.test(error.message));
    const [{ count }] = await storage.query<{ count: number }>('SELECT count(*) AS count FROM jobs');
    assert.equal(Number(count), 2, 'nothing was added');
  });
}

test('a search journal of the first fmnist searches, a missing file and an unreachable PostgreSQL are one-line errors', () => {
  const dir = tempDir();
  const old = new Database(join(dir, 'search.sqlite'));
  old.exec('CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)');
  old.close();
  const before = runCli(['search', 'status', '--storage', dir]);
  assert.equal(before.status, 1);
  assert.ok(isOneLineError(before.stderr), before.stderr);
  assert.match(before.stderr, /holds a search journal of an older fmnist/);

  const missing = runCli(['search', 'status', '--storage', join(dir, 'nothing.sqlite')]);
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, /nothing\.sqlite does not exist/);

  // Port 1 on loopback: nothing listens there.
  const url = 'postgresql://fmnist:secret@127.0.0.1:1/fmnist';
  for (const args of [['search', 'status', '--storage', url], ['search', 'worker', '--storage', url], ['search', 'mlp', '--storage', url, '--out', join(dir, 'never')]]) {
    const run = runCli(args);
    assert.equal(run.status, 1, run.stderr);
    assert.ok(isOneLineError(run.stderr), run.stderr);
    assert.match(run.stderr, /Cannot reach the PostgreSQL database postgresql:\/\/fmnist:\*\*\*@127\.0\.0\.1:1\/fmnist \(.*ECONNREFUSED.*\); check the URL/);
    assert.doesNotMatch(run.stderr, /secret/);
  }
  assert.ok(!existsSync(join(dir, 'never')), 'no search folder was made');
  writeFileSync(join(dir, 'probe'), 'not a database, but text long enough to fill the header of an SQLite file: 100 bytes or more of it.');
  const probe = runCli(['search', 'status', '--storage', join(dir, 'probe')]);
  assert.equal(probe.status, 1);
  assert.ok(isOneLineError(probe.stderr), probe.stderr);
});
