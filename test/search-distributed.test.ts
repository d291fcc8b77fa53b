import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { UserError } from '../src/errors.ts';
import { searchSettings } from '../src/search/settings.ts';
import type { FinalEvaluation } from '../src/search/summary.ts';
import type { StudyStatus } from '../src/search/status.ts';
import { openStorage } from '../src/search/storage.ts';
import { Study, type JobRow } from '../src/search/study.ts';
import { isOneLineError, runCli } from './helpers/cli.ts';
import { tempDir } from './helpers/idx-files.ts';
import { postgresForTest } from './helpers/postgres.ts';

const CLI = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));
// tsx by its full address: the processes run in folders outside the project.
const TSX = import.meta.resolve('tsx');
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface Running {
  /** The stand-in machine's working folder. */
  root: string;
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

/**
 * `fmnist` on a stand-in machine: a working folder and a temporary folder of its own, so that
 * the processes share nothing but the database.
 */
function onMachine(args: string[]): Running {
  const root = tempDir('fmnist-machine-');
  mkdirSync(join(root, 'tmp'));
  const child = spawn(process.execPath, ['--import', TSX, CLI, ...args], { cwd: root, env: { ...process.env, TMPDIR: join(root, 'tmp') }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (chunk) => (output += chunk));
  child.stderr!.on('data', (chunk) => (output += chunk));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { root, child, output: () => output, exited };
}

test('three workers share a PostgreSQL study; one killed mid-job is taken over from its checkpoint, and the study completes', { timeout: 300_000 }, async (t) => {
  const url = await postgresForTest(t);
  if (!url) return;
  const storage = await openStorage(url);
  t.after(() => storage.close());
  // Six trials, rungs at 2 and 6 epochs; a 4-second grace period; every epoch's checkpoint stored.
  const flags = ['--storage', url, '--study', 'shared', '--checkpoint-every', '0'];
  const head = onMachine(['search', 'mlp', ...flags, '--trials', '6', '--min-epochs', '2', '--max-epochs', '6', '--train-limit', '3000', '--seed', '3', '--grace', '4', '--workers', '0', '--out', 'out', '--no-report']);
  const processes = [head];
  t.after(() => {
    for (const { child } of processes) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });

  let study: Study | undefined;
  for (const deadline = Date.now() + 60_000; !study && Date.now() < deadline; await sleep(200)) {
    study = await Study.open(storage, 'shared').catch((error: unknown) => {
      if (error instanceof UserError) return undefined;
      throw error;
    });
  }
  assert.ok(study, `the study was created:\n${head.output()}`);
  assert.equal(study.settings.halving, 'async', 'PostgreSQL studies halve asynchronously by default');
  assert.deepEqual(study.rungs, [2, 6]);
  const workers = [0, 1, 2].map(() => onMachine(['search', 'worker', ...flags, '--workers', '1']));
  processes.push(...workers);

  // Wait for a worker in the middle of a rung-1 job (epochs 2 to 6) with a checkpoint of it stored
  // and at least two epochs to go, then kill it without warning.
  let victim: { worker: Running; job: JobRow; epochs: number } | undefined;
  for (const deadline = Date.now() + 180_000; !victim && Date.now() < deadline; await sleep(50)) {
    const stopped = workers.find(({ child }) => child.exitCode !== null);
    assert.ok(!stopped, `a worker stopped before any was killed:\n${stopped?.output()}`);
    const stored = await study.reads.checkpointEpochs();
    for (const job of await study.reads.jobs()) {
      const epochs = stored.get(job.trial) ?? 0;
      const worker = workers.find(({ child }) => job.worker?.includes(`:${child.pid}:`));
      if (job.state === 'running' && job.rung === 1 && epochs > 2 && epochs < 5 && worker) victim = { worker, job, epochs };
    }
  }
  assert.ok(victim, `a worker was caught in the middle of a job:\n${workers.map((w) => w.output()).join('\n')}`);
  victim.worker.child.kill('SIGKILL');
  const { job } = victim;
  const held = (await study.reads.jobs()).find((row) => row.trial === job.trial && row.rung === job.rung)!;
  assert.deepEqual([held.state, held.worker, held.attempt], ['running', job.worker, job.attempt], 'killed while it held the job');

  assert.equal(await head.exited, 0, head.output());
  for (const worker of workers.filter((w) => w !== victim.worker)) assert.equal(await worker.exited, 0, worker.output());

  // Every (trial, rung) recorded exactly once, and every job done.
  const results = await study.reads.results();
  const jobs = await study.reads.jobs();
  const keys = results.map((r) => `${r.trial}/${r.rung}`);
  assert.equal(new Set(keys).size, keys.length);
  assert.deepEqual(keys.sort(), jobs.map((row) => `${row.trial}/${row.rung}`).sort());
  assert.ok(jobs.every((row) => row.state === 'done'));
  assert.equal(results.filter((r) => r.rung === 0).length, 6);

  // The killed worker's job: taken over (second attempt) by another worker, from the stored checkpoint.
  const retry = jobs.find((row) => row.trial === job.trial && row.rung === job.rung)!;
  assert.equal(retry.attempt, job.attempt + 1, 'the job was claimed once more');
  assert.notEqual(retry.worker, job.worker);
  assert.ok(retry.fromEpoch! >= victim.epochs && retry.fromEpoch! < 6, `resumed from epoch ${retry.fromEpoch}, not from the start of the rung (2)`);
  const result = results.find((r) => r.trial === job.trial && r.rung === job.rung)!;
  assert.equal(result.worker, retry.worker);
  assert.equal(result.epochs, 6);
  assert.equal(result.history.length, 6, 'the learning curve holds every epoch, those before the kill included');

  // status shows the finished study and the killed worker's last heartbeat.
  const status = JSON.parse(runCli(['search', 'status', ...flags.slice(0, 4), '--json']).stdout) as StudyStatus;
  assert.equal(status.finished, true);
  assert.equal(status.states.waiting + status.states.running, 0);
  assert.ok(status.states.complete >= 2, `${status.states.complete} complete`);
  assert.equal(status.perRung[0].results, 6);
  const dead = status.workers.find((w) => w.id === job.worker)!;
  assert.ok(dead.heartbeatSecondsAgo >= 4, `the killed worker's heartbeat is ${dead.heartbeatSecondsAgo} s old`);
  assert.equal(status.workers.length, 4, 'three workers and the process that started the study');
  const text = runCli(['search', 'status', ...flags.slice(0, 4)]);
  assert.match(text.stdout, /finished: no job left/);
  assert.match(text.stdout, new RegExp(`best so far: trial ${status.best!.trial}, validation`));

  // The head exported the results and evaluated the best model, which it took from the database.
  const headDir = join(head.root, 'out');
  assert.match(head.output(), /search folder: out \(trials\.csv, trials\.json, best\.json; the best model in trials\/\d+\)/);
  const final = JSON.parse(readFileSync(join(headDir, 'best.json'), 'utf8')) as FinalEvaluation;
  assert.equal(final.trial, status.best!.trial);
  assert.ok(final.test.accuracy > 0.6, `test accuracy ${final.test.accuracy}`);
  assert.ok(existsSync(join(headDir, 'trials', String(final.trial), 'model.safetensors')));
});

test('a PostgreSQL study whose settings differ from the command\'s is refused with one line, and left as it was', async (t) => {
  const url = await postgresForTest(t);
  if (!url) return;
  const storage = await openStorage(url, { create: true });
  t.after(() => storage.close());
  const settings = searchSettings('mlp', { trials: 2, maxEpochs: 1, trainLimit: 500, halving: 'async' });
  await Study.create(storage, 'fixed', settings, [{ id: 0, params: {} }, { id: 1, params: {} }]);
  const out = join(tempDir(), 'out');
  const run = runCli(['search', 'mlp', '--storage', url, '--study', 'fixed', '--trials', '3', '--max-epochs', '1', '--train-limit', '500', '--grace', '9', '--out', out]);
  assert.equal(run.status, 1, run.stderr);
  assert.ok(isOneLineError(run.stderr), run.stderr);
  assert.match(run.stderr, /study "fixed" in postgresql:\/\/.* holds a search with other settings \(trials\); run it with the same flags to continue it, or choose another --study/);
  assert.ok(!existsSync(out));
  const study = await Study.open(storage, 'fixed');
  assert.equal(study.graceMs, 60_000, 'the grace period is unchanged');
  assert.equal((await study.reads.trials()).length, 2);
  assert.ok((await study.reads.jobs()).every((row) => row.attempt === 0), 'no job was claimed');
});
