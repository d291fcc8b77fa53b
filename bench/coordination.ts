/**
 * The coordination benchmark: how many jobs a search database hands out per second when the
 * jobs themselves take no time. `npm run bench -- coordination --storage URL` (the URL of a
 * PostgreSQL database, e.g. from scripts/test-postgres.sh) creates a study of 4,000 trials with
 * asynchronous halving (rungs at 1, 3 and 9 epochs, eta 3: about 6,000 jobs), starts 64 worker
 * processes, each with its own connection, and lets them claim, heartbeat and record made-up
 * results through the same Study code as real workers, promotions included, until no job is
 * left. Prints one JSON line:
 *   {"bench":"coordination","workers":64,"jobsPerSecond":...,"p99ClaimMs":...}
 * with the processor time per job of the workers and, where the server runs on this machine, of
 * the server; then one line for checkpoint uploads (what a 512-unit MLP's checkpoint costs to
 * store). `--workers N` runs N workers instead of 64. The studies are deleted at the end. Run here as a child process per worker:
 *   node --import tsx bench/coordination.ts worker URL STUDY
 */
import { fork } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { fileURLToPath } from 'node:url';
import { searchSettings } from '../src/search/settings.ts';
import { openStorage, type Storage } from '../src/search/storage.ts';
import { Study } from '../src/search/study.ts';
import { encodeCheckpoint } from '../src/training/checkpoint.ts';


type FromWorker = { type: 'ready' } | { type: 'done'; jobs: number; claimMs: number[]; cpuMs: number };

/** A made-up validation accuracy, distinct per trial and rising with the rung. */
function accuracy(trial: number, rung: number): number {
  return 0.5 + ((trial * 7919) % 1009) / 1009 / 3 + rung * 0.01;
}

/** One worker process: claim, heartbeat, record, until the study has no job left. */
async function worker(location: string, name: string): Promise<void> {
  const storage = await openStorage(location, { connections: 1 });
  const study = await Study.open(storage, name);
  const id = `${hostname()}:${process.pid}:bench`;
  await study.leases.registerWorker({ id, host: hostname(), pid: process.pid });
  process.send!({ type: 'ready' } satisfies FromWorker);
  await new Promise((resolve) => process.once('message', resolve));
  const claimMs: number[] = [];
  const cpu = process.cpuUsage();
  let jobs = 0;
  for (;;) {
    const started = performance.now();
    const claim = await study.leases.claim(id);
    if (claim.type === 'done') break;
    if (claim.type === 'wait') {
      await new Promise((resolve) => setTimeout(resolve, 20));
      continue;
    }
    claimMs.push(performance.now() - started);
    const { lease } = claim;
    await study.leases.heartbeat(id);
    const valAccuracy = accuracy(lease.trial, lease.rung);
    const epochs = study.rungs[lease.rung];
    await study.results.record(lease, { trial: lease.trial, rung: lease.rung, epochs, valAccuracy, valLoss: 1 - valAccuracy, bestEpoch: epochs, seconds: 0, history: [], failure: null });
    jobs++;
  }
  const { user, system } = process.cpuUsage(cpu);
  await storage.close();
  process.send!({ type: 'done', jobs, claimMs, cpuMs: (user + system) / 1000 } satisfies FromWorker);
}

/**
 * Processor time (ms) of a PostgreSQL server on this machine, its exited backends included
 * (the postmaster's own and its reaped children's times in /proc), or null where it cannot be
 * read: another machine, another user's server.
 */
async function serverCpuMs(storage: Storage): Promise<number | null> {
  try {
    const [{ pid }] = await storage.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
    const fields = (path: string) => readFileSync(path, 'utf8').replace(/^.*\) /s, '').split(' ');
    const postmaster = fields(`/proc/${pid}/stat`)[1];
    // utime, stime, cutime, cstime: fields 14 to 17 of stat, 11 to 14 after the command; in ticks of 10 ms.
    return fields(`/proc/${postmaster}/stat`).slice(11, 15).reduce((sum, ticks) => sum + Number(ticks), 0) * 10;
  } catch {
    return null;
  }
}

const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];

/**
 * Stores a 6.7 MB checkpoint (the size of a 512-unit MLP's: weights, best weights, Adam's two
 * buffers, example order) 20 times through the same call as a worker: what a worker's uploads cost.
 */
async function checkpointUploads(storage: Storage, study: Study): Promise<Record<string, unknown>> {
  const claim = await study.leases.claim('bench-uploader');
  if (claim.type !== 'job') throw new Error('no job to store checkpoints for');
  const parameters = 784 * 512 + 512 + 512 * 10 + 10;
  const state = {
    epochsDone: 1,
    values: new Float32Array(parameters).map((_, i) => Math.sin(i)),
    bestValues: new Float32Array(parameters).map((_, i) => Math.cos(i)),
    bestEpoch: 1,
    bestAccuracy: 0.5,
    optimizer: { steps: 750, buffers: [new Float32Array(parameters).map((_, i) => Math.sin(i / 7)), new Float32Array(parameters).map((_, i) => Math.cos(i / 7))] },
    rngs: [],
    order: Int32Array.from({ length: 48_000 }, (_, i) => i),
    history: [],
  };
  const data = encodeCheckpoint(state);
  const uploads = 20;
  const started = performance.now();
  for (let epochs = 1; epochs <= uploads; epochs++) await study.leases.saveCheckpoint(claim.lease, epochs, data);
  const seconds = (performance.now() - started) / 1000;
  await study.leases.release(claim.lease);
  return { bench: 'checkpoint-upload', engine: storage.dialect.engine, megabytes: Number((data.length / 1e6).toFixed(2)), uploads, msEach: Math.round((seconds * 1000) / uploads), megabytesPerSecond: Math.round((data.length * uploads) / 1e6 / seconds) };
}

/** Runs the benchmark against `location`; resolves with its JSON records (coordination, then checkpoint uploads). */
export async function coordinationBench(location: string, { workers = 64, trials = 4000 } = {}): Promise<Record<string, unknown>[]> {
  const storage = await openStorage(location, { create: true, connections: 2 });
  const name = `bench-coordination-${Date.now()}`;
  try {
    const settings = searchSettings('mlp', { trials, minEpochs: 1, maxEpochs: 9, reductionFactor: 3, halving: 'async', includeDefault: false });
    await Study.create(storage, name, settings, Array.from({ length: trials }, (_, id) => ({ id, params: { hidden: 128 } })));

    const children = Array.from({ length: workers }, () =>
      fork(fileURLToPath(import.meta.url), ['worker', location, name], { execArgv: process.execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }),
    );
    const messages = (type: FromWorker['type']) =>
      Promise.all(children.map((child) => new Promise<FromWorker>((resolve, reject) => {
        const onMessage = (message: FromWorker) => {
          if (message.type !== type) return;
          child.off('message', onMessage);
          resolve(message);
        };
        child.on('message', onMessage);
        child.once('exit', (code) => (code === 0 ? undefined : reject(new Error(`a benchmark worker exited with code ${code}`))));
      })));
    // All 64 connected before the clock starts: process start-up is not coordination.
    await messages('ready');
    const serverBefore = await serverCpuMs(storage);
    const started = performance.now();
    const finishing = messages('done');
    for (const child of children) child.send('go');
    const done = (await finishing) as Extract<FromWorker, { type: 'done' }>[];
    const seconds = (performance.now() - started) / 1000;
    // The workers' connections have closed; their server processes are reaped within moments.
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const serverAfter = await serverCpuMs(storage);

    const jobs = done.reduce((sum, d) => sum + d.jobs, 0);
    const claims = done.flatMap((d) => d.claimMs).sort((a, b) => a - b);
    const recorded = (await storage.query<{ count: number }>('SELECT count(*) AS count FROM results WHERE study = $1', [name]))[0].count;
    if (Number(recorded) !== jobs) throw new Error(`${jobs} jobs done but ${recorded} results recorded`);
    const round = (value: number) => Number(value.toFixed(2));
    const coordination = {
      bench: 'coordination',
      engine: storage.dialect.engine,
      workers,
      trials,
      jobs,
      seconds: round(seconds),
      jobsPerSecond: Math.round(jobs / seconds),
      p50ClaimMs: round(percentile(claims, 50)),
      p99ClaimMs: round(percentile(claims, 99)),
      // Processor time per job: the workers', and the database server's where it runs here (null otherwise).
      workerCpuMsPerJob: round(done.reduce((sum, d) => sum + d.cpuMs, 0) / jobs),
      serverCpuMsPerJob: serverBefore === null || serverAfter === null ? null : round((serverAfter - serverBefore) / jobs),
    };
    // A second study of one trial: its job holds the checkpoints.
    const { study: uploader } = await Study.create(storage, `${name}-uploads`, searchSettings('mlp', { trials: 1 }), [{ id: 0, params: {} }]);
    return [coordination, await checkpointUploads(storage, uploader)];
  } finally {
    for (const study of [name, `${name}-uploads`]) {
      for (const table of ['results', 'rungs', 'checkpoints', 'files', 'workers', 'jobs', 'trials']) await storage.execute(`DELETE FROM ${table} WHERE study = $1`, [study]);
      await storage.execute('DELETE FROM studies WHERE name = $1', [study]);
    }
    await storage.close();
  }
}

if (process.argv[2] === 'worker') await worker(process.argv[3], process.argv[4]);
