/**
 * The search benchmark: do a study's jobs train as fast as `fmnist train`, and what does
 * coordinating them cost? `npm run bench -- search [--storage URL] [--workers N] [--rounds N]
 * [--train-limit N]` runs a small MLP study (9 trials of the default space, rungs at 1, 3 and 9
 * epochs: 13 jobs) through `runSearch`, on SQLite in a temporary folder or in the PostgreSQL
 * database of `--storage` (synchronous halving on SQLite, asynchronous on PostgreSQL: each
 * database's default), with N trainer processes (default 1); then trains every trial with
 * `fmnist train` (its own process, `--threads 1`, the trial's configuration and its 9-epoch
 * schedule), N at a time, up to the last epoch the study trained it to. Study and references
 * take turns, round by round (3 by default), since a machine's speed drifts. `--train-limit`
 * trains on a sample of that many images (a quick check that it runs; the figures to report use
 * all 48,000).
 *
 * Prints JSON lines: the machine; per job its seconds per epoch (training and validation, as
 * the epoch's record times it) beside `fmnist train`'s for the same epochs, and whether the
 * job's validation figures are the reference's to the last digit; and the study's wall time
 * beside the sum of its jobs' seconds: `overhead` = wall × trainers / Σ job seconds − 1, what the
 * trainers spent not training (process start, data loading, claims, checkpoint and result
 * writes, and waiting at a rung for its last job).
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MLP_CONFIG_OPTIONS } from '../src/runs/options.ts';
import type { MlpConfig } from '../src/runs/configs.ts';
import { runSearch } from '../src/search/search.ts';
import { baseConfig, searchSettings, type SearchRequest } from '../src/search/settings.ts';
import { trialConfig, type TrialParams } from '../src/search/space.ts';
import { openStorage, SQLITE_FILE, type Engine } from '../src/search/storage.ts';
import { Study, type RecordedResult } from '../src/search/study.ts';
import type { EpochRecord } from '../src/training/fit.ts';
import { median } from './training-step.ts';

const CLI = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));

export interface SearchBenchOptions {
  /** A postgresql:// URL; SQLite in a temporary folder where absent. */
  storage?: string;
  /** Trainer processes of the study, and `fmnist train` processes at once. */
  workers: number;
  rounds: number;
  /** Train on a stratified sample of this many images; null: all of them. */
  trainLimit: number | null;
}

/** The processor, as /proc/cpuinfo names it, with its family and model (which tell a Zen 4 from a Zen 5). */
function cpuName(): string {
  const info = readFileSync('/proc/cpuinfo', 'utf8');
  const field = (name: string) => new RegExp(`^${name}\\s*:\\s*(.*)$`, 'm').exec(info)?.[1] ?? '?';
  return `${field('model name')} (family ${field('cpu family')}, model ${field('model')}), ${cpus().length} cores`;
}

/** `fmnist train mlp` flags for a configuration, each field's flag from the option table. */
function trainFlags(config: MlpConfig): string[] {
  const flags: string[] = [];
  for (const [key, option] of Object.entries(MLP_CONFIG_OPTIONS)) {
    const value = config[key as keyof MlpConfig];
    const flag = option.flag.split(' ')[0];
    if (value === null || value === false) continue;
    flags.push(...(value === true ? [flag] : [flag, Array.isArray(value) ? value.join(',') : String(value)]));
  }
  return flags;
}

/**
 * Trains `config` with `fmnist train mlp` in a process of its own, stopped (SIGTERM, which keeps
 * the checkpoint of the last epoch finished) once it has printed epoch `epochs`; gives the epochs'
 * records from its checkpoint.
 */
function referenceRun(config: MlpConfig, epochs: number): Promise<EpochRecord[]> {
  const folder = mkdtempSync(join(tmpdir(), 'fmnist-bench-train-'));
  const out = join(folder, 'run');
  const child = spawn(process.execPath, [...process.execArgv, CLI, 'train', 'mlp', ...trainFlags(config), '--no-report', '--out', out], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  // The line that ends the epoch (its checkpoint is written before the next epoch starts), not a
  // progress line written during it; fmnist train writes them to stderr.
  const ended = new RegExp(`^epoch ${epochs}/\\d+: loss`, 'm');
  const onData = (chunk: Buffer) => {
    output += chunk.toString();
    if (ended.test(output)) child.kill('SIGTERM');
  };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);
  return new Promise((resolve, reject) => {
    child.on('exit', () => {
      try {
        // A run stopped keeps its checkpoint; a run that trained all its epochs wrote history.json instead.
        const state = join(out, 'checkpoint', 'checkpoint.json');
        const finished = join(out, 'history.json');
        if (!existsSync(state) && !existsSync(finished)) throw new Error(`fmnist train failed: ${output.slice(-500)}`);
        const history = existsSync(state) ? (JSON.parse(readFileSync(state, 'utf8')) as { history: EpochRecord[] }).history : (JSON.parse(readFileSync(finished, 'utf8')) as EpochRecord[]);
        if (history.length < epochs) throw new Error(`fmnist train stopped after ${history.length} of ${epochs} epochs: ${output.slice(-500)}`);
        resolve(history.slice(0, epochs));
      } catch (error) {
        reject(error instanceof Error ? error : new Error(String(error)));
      } finally {
        rmSync(folder, { recursive: true, force: true });
      }
    });
  });
}

/** Runs `tasks` with at most `lanes` at a time. */
async function inLanes<T>(tasks: (() => Promise<T>)[], lanes: number): Promise<T[]> {
  const results: T[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: lanes }, async () => {
      while (next < tasks.length) {
        const index = next++;
        results[index] = await tasks[index]();
      }
    }),
  );
  return results;
}

interface StudyRound {
  engine: Engine;
  wallSeconds: number;
  /** Epochs at the end of each rung. */
  rungs: number[];
  results: RecordedResult[];
  params: Map<number, TrialParams>;
}

/** Runs the study once, as `fmnist search` does; gives its wall time and what it recorded. */
async function studyRound(settings: SearchRequest, options: SearchBenchOptions, round: number): Promise<StudyRound> {
  const outDir = mkdtempSync(join(tmpdir(), 'fmnist-bench-search-'));
  const name = `bench-search-${process.pid}-${round}`;
  try {
    const started = performance.now();
    const { engine } = await runSearch(settings, { outDir, storage: options.storage, study: name, workers: options.workers });
    const wallSeconds = (performance.now() - started) / 1000;
    const storage = await openStorage(options.storage ?? join(outDir, SQLITE_FILE));
    try {
      const study = await Study.open(storage, name);
      const results = await study.reads.results();
      const params = new Map((await study.reads.trials()).map((trial) => [trial.id, trial.params]));
      if (options.storage) await study.delete();
      return { engine, wallSeconds, rungs: study.rungs, results, params };
    } finally {
      await storage.close();
    }
  } finally {
    rmSync(outDir, { recursive: true, force: true });
  }
}

const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / values.length;
const round3 = (value: number) => Number(value.toFixed(3));

interface JobFigures {
  trial: number;
  rung: number;
  /** The job's epochs, first and last (1-based). */
  first: number;
  last: number;
  seconds: number[];
  reference: number[];
  ratios: number[];
  same: boolean;
}

export async function searchBench(emit: (record: object) => void, options: SearchBenchOptions): Promise<void> {
  // Halving left to the database: synchronous on SQLite, asynchronous on PostgreSQL.
  const settings = searchSettings('mlp', { trials: 9, minEpochs: 1, maxEpochs: 9, trainLimit: options.trainLimit });
  const base = baseConfig(settings);
  emit({ bench: 'search', cpu: cpuName(), workers: options.workers, rounds: options.rounds, trials: settings.trials, maxEpochs: settings.maxEpochs, trainLimit: settings.trainLimit });

  /** The references: each trial trained by `fmnist train` up to the epoch given, `workers` at a time. */
  const train = async (reached: Map<number, number>, params: Map<number, TrialParams>) => {
    const trials = [...reached.keys()].sort((a, b) => a - b);
    const histories = await inLanes(
      trials.map((trial) => () => referenceRun(trialConfig('mlp', base, params.get(trial)!) as MlpConfig, reached.get(trial)!)),
      options.workers,
    );
    return new Map(trials.map((trial, i) => [trial, histories[i]]));
  };
  const reachedBy = (study: StudyRound) => {
    const reached = new Map<number, number>();
    for (const result of study.results) reached.set(result.trial, Math.max(reached.get(result.trial) ?? 0, result.epochs));
    return reached;
  };

  const jobs = new Map<string, JobFigures>();
  const studies: { wall: number; jobSeconds: number; epochSeconds: number; jobs: number }[] = [];
  let previous: StudyRound | null = null;
  let engine: Engine | null = null;
  for (let round = 0; round < options.rounds; round++) {
    // Odd rounds train the references first (the epochs of the round before), so that neither
    // side always runs right after the other.
    let reference: Map<number, EpochRecord[]> | null = null;
    if (round % 2 === 1 && previous) reference = await train(reachedBy(previous), previous.params);
    const study = await studyRound(settings, options, round);
    reference ??= await train(reachedBy(study), study.params);
    previous = study;
    engine = study.engine;

    let epochSeconds = 0;
    for (const result of study.results) {
      const first = study.rungs[result.rung - 1] ?? 0;
      const own = result.history.slice(first, result.epochs);
      epochSeconds += own.reduce((sum, record) => sum + record.seconds, 0);
      const theirs = (reference.get(result.trial) ?? []).slice(first, result.epochs);
      // A diverged trial has no epochs; under asynchronous halving a round may train a trial further than the one before.
      if (result.failure !== null || own.length === 0 || theirs.length < own.length) continue;
      const key = `${result.trial}/${result.rung}`;
      const figures = jobs.get(key) ?? { trial: result.trial, rung: result.rung, first: first + 1, last: result.epochs, seconds: [], reference: [], ratios: [], same: true };
      const seconds = mean(own.map((record) => record.seconds));
      const referenceSeconds = mean(theirs.map((record) => record.seconds));
      figures.seconds.push(seconds);
      figures.reference.push(referenceSeconds);
      figures.ratios.push(seconds / referenceSeconds);
      figures.same &&= own.every((record, i) => record.valAccuracy === theirs[i].valAccuracy && record.valLoss === theirs[i].valLoss);
      jobs.set(key, figures);
    }
    studies.push({ wall: study.wallSeconds, jobSeconds: study.results.reduce((sum, result) => sum + result.seconds, 0), epochSeconds, jobs: study.results.length });
  }

  const perJob = [...jobs.values()].sort((a, b) => a.rung - b.rung || a.trial - b.trial);
  for (const job of perJob) {
    emit({
      bench: 'search-job',
      engine,
      workers: options.workers,
      trial: job.trial,
      rung: job.rung,
      epochs: `${job.first}-${job.last}`,
      secondsPerEpoch: round3(median(job.seconds)),
      trainSecondsPerEpoch: round3(median(job.reference)),
      ratio: round3(median(job.ratios)),
      ratioEach: job.ratios.map(round3),
      sameFigures: job.same,
    });
  }
  const overheads = studies.map((s) => (s.wall * options.workers) / s.jobSeconds - 1);
  emit({
    bench: 'search-study',
    engine,
    workers: options.workers,
    jobs: studies.map((s) => s.jobs),
    wallSeconds: studies.map((s) => round3(s.wall)),
    jobSeconds: studies.map((s) => round3(s.jobSeconds)),
    epochSeconds: studies.map((s) => round3(s.epochSeconds)),
    overhead: round3(median(overheads)),
    overheadEach: overheads.map(round3),
    worstJobRatio: round3(Math.max(...perJob.map((job) => median(job.ratios)))),
    allSameFigures: perJob.every((job) => job.same),
  });
}
