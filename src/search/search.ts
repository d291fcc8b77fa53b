/**
 * A search, start to end: `runSearch` creates its study (or continues it), trains its jobs here
 * while workers elsewhere may share them, and writes the results and the best model;
 * `runSearchWorker` joins a study that exists; `evaluateBest` tests the winner once.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { DataOptions } from '../data/prepare.ts';
import { UserError } from '../errors.ts';
import { writeFileAtomic, writeJsonAtomic } from '../io/atomic.ts';
import { lockFolder, type FolderLock } from '../io/lock.ts';
import type { BackendName } from '../kernels/index.ts';
import { Rng } from '../random/rng.ts';
import { evaluateSavedModel } from '../runs/evaluate.ts';
import { resolveSettings, type SearchRequest, type SearchSettings, type StudyWorkOptions } from './settings.ts';
import { defaultConfig, gridParams, sampleParams, type TrialParams } from './space.ts';
import { openStorage, SQLITE_FILE, type Engine, type Storage } from './storage.ts';
import { Study, type TrialRow } from './study.ts';
import { summarize, type FinalEvaluation, type TrialSummary } from './summary.ts';
import { writeModelFiles } from './trial.ts';
import { runWorker, type WorkerOptions, type WorkerReport } from './worker.ts';

/** Where `runSearch` works: its folder, and the study's database, name, trainers here and grace period. */
export interface SearchOptions extends StudyWorkOptions {
  /** The search folder: results, the best model and the report; also the trials' working copies. */
  outDir: string;
  /** Where the study lives: a postgresql:// URL shared by workers on many machines, or an SQLite file (default: search.sqlite in outDir). */
  storage?: string;
  /** The study's name in its database (default: search-<model>). */
  study?: string;
  /** Trainer processes here (one thread each); default: every core. 0: train nothing here, wait for other workers to finish the study. */
  workers?: number;
  /** A job whose heartbeat is older than this many seconds goes to another worker (default 60); stored with the study. */
  graceSeconds?: number;
}

export interface SearchResult {
  settings: SearchSettings;
  /** Epochs trained by the end of each rung. */
  rungs: number[];
  /** All trials, best validation accuracy first (trials that reached later rungs break ties). */
  trials: TrialSummary[];
  best: TrialSummary;
  /** Folder of the best trial's saved model. */
  bestDir: string;
  seconds: number;
  /** The study's database, as given (a URL keeps its password). */
  storage: string;
  /** The database's engine. */
  engine: Engine;
  /** The study's name in it. */
  study: string;
}

/** The trials a search's settings draw (random) or enumerate (grid), from its seed. */
function makeTrials(settings: SearchRequest): TrialRow[] {
  if (settings.strategy === 'grid') return gridParams(settings.space).map((params, id) => ({ id, params }));
  const rng = Rng.fromSeed(settings.seed).fork();
  const trials: TrialRow[] = [];
  if (settings.includeDefault) {
    const base = defaultConfig(settings.model) as unknown as Record<string, number | string | boolean>;
    const params: TrialParams = {};
    for (const name of Object.keys(settings.space)) params[name] = name === 'widthMultiplier' ? 1 : base[name];
    trials.push({ id: 0, params });
  }
  while (trials.length < settings.trials) trials.push({ id: trials.length, params: sampleParams(settings.space, rng) });
  return trials;
}

/** Creates the study, or checks that the one found has the same settings (a one-line error otherwise, nothing changed). */
async function openStudy(storage: Storage, request: SearchRequest, options: SearchOptions, name: string): Promise<{ study: Study; created: boolean }> {
  const graceMs = options.graceSeconds === undefined ? undefined : options.graceSeconds * 1000;
  const { study, created } = await Study.create(storage, name, request, makeTrials(request), graceMs);
  const saved = study.settings;
  const asked = resolveSettings(request, storage.dialect.engine);
  const differ = Object.keys({ ...saved, ...asked }).filter((key) => JSON.stringify(saved[key as keyof SearchSettings]) !== JSON.stringify(asked[key as keyof SearchSettings]));
  if (differ.length > 0) {
    const shared = storage.dialect.engine === 'postgresql';
    const where = shared ? `study "${name}" in ${storage.location}` : options.outDir;
    throw new UserError(`${where} holds a search with other settings (${differ.join(', ')}); run it with the same flags to continue it, or choose another ${shared ? '--study' : '--out'}.`);
  }
  if (!created && graceMs !== undefined && graceMs !== study.graceMs) return { study: await study.setGrace(graceMs), created };
  return { study, created };
}

/** The event of a worker's job as a search reports it: with the study's count of results so far. */
function jobEvents(study: Study, done: number, onJob: StudyWorkOptions['onJob']): WorkerOptions['onJob'] {
  const total = study.halving === 'sync' ? study.sizes.reduce((a, b) => a + b, 0) : null;
  return ({ lease, result }) => {
    if (result) done++;
    onJob?.({ trial: lease.trial, rung: lease.rung, epochs: study.rungs[lease.rung], result, done, total });
  };
}

/** What runWorker is told by a search or a search worker. */
function workerOptions(study: Study, options: StudyWorkOptions, trainers: number, workDir: string, done: number): WorkerOptions {
  return {
    trainers,
    workDir,
    data: options.data,
    allowModifiedData: options.allowModifiedData,
    checkpointEveryMs: options.checkpointEverySeconds === undefined ? undefined : options.checkpointEverySeconds * 1000,
    log: options.log,
    onJob: jobEvents(study, done, options.onJob),
  };
}

/**
 * Runs (or continues) a search: creates its study in the database (or finds it, with the same
 * settings), trains its jobs on trainer processes here until none is left, while workers on
 * other machines (`fmnist search worker`) may share the work, then writes the results and the
 * best model to outDir. Each result is recorded as it arrives; a search killed and run again
 * keeps every result recorded and resumes interrupted trials from their stored checkpoints.
 * Halving left out of `request` is the database's default: synchronous on SQLite, asynchronous
 * on PostgreSQL. Reads only the training data: selection is on the validation split.
 */
export async function runSearch(request: SearchRequest, options: SearchOptions): Promise<SearchResult> {
  const started = performance.now();
  const outDir = resolve(options.outDir);
  const location = options.storage ?? join(outDir, SQLITE_FILE);
  const name = options.study ?? `search-${request.model}`;
  const trainers = options.workers ?? availableParallelism();
  const storage = await openStorage(location, { create: true, connections: trainers + 2 });
  let lock: FolderLock | null = null;
  try {
    const { study, created } = await openStudy(storage, request, options, name);
    const { settings } = study;
    // One search writes a folder at a time (its trials, results and report).
    lock = lockFolder(outDir, `fmnist search ${settings.model}`, options.log);
    const plan = settings.halving === 'sync' ? `keeping ${study.sizes.join(', ')} trials; ${study.sizes.reduce((a, b) => a + b, 0)} jobs` : `asynchronous halving keeping the best 1/${settings.reductionFactor}`;
    options.log?.(`search: ${study.trialCount} trials, rungs at ${study.rungs.join(', ')} epochs ${plan}`);
    if (storage.dialect.engine === 'postgresql') options.log?.(`study "${name}" ${created ? 'created' : 'continued'} in ${storage.location}`);
    const recorded = (await study.reads.results()).length;
    if (!created && recorded > 0) options.log?.(`${recorded} results kept from before`);
    await runWorker(study, workerOptions(study, options, trainers, outDir, recorded));
    return await exportStudy(study, outDir, { storage: location, seconds: (performance.now() - started) / 1000 });
  } finally {
    lock?.release();
    await storage.close();
  }
}

/**
 * Writes a finished study's results to `outDir`: trials.csv and trials.json, and the best
 * trial's model in trials/<id>/ (from the database, where this machine did not train it).
 */
export async function exportStudy(study: Study, outDir: string, details: { storage: string; seconds: number }): Promise<SearchResult> {
  const table = summarize(await study.reads.trials(), await study.reads.results());
  const last = study.rungs.length - 1;
  // The winner must have trained every epoch: only those trials have a saved model.
  const best = table.find((trial) => trial.rung === last && trial.valAccuracy !== null);
  if (!best) throw new UserError('No trial trained to the last rung without diverging; lower the learning rates of the search space and run again.');
  const bestDir = join(outDir, 'trials', String(best.trial));
  writeModelFiles(await study.reads.files(best.trial), bestDir);
  const result: SearchResult = {
    settings: study.settings,
    rungs: study.rungs,
    trials: table,
    best,
    bestDir,
    seconds: details.seconds,
    storage: details.storage,
    engine: study.storage.dialect.engine,
    study: study.name,
  };
  writeResults(outDir, result);
  return result;
}

function csvCell(value: unknown): string {
  const text = value === null || value === undefined ? '' : String(value);
  return /[",\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/** trials.csv and trials.json: every trial, best validation accuracy first. */
function writeResults(outDir: string, result: SearchResult): void {
  const names = Object.keys(result.settings.space);
  const header = ['rank', 'trial', ...names, 'val_accuracy', 'val_loss', 'epochs', 'rung', 'seconds', 'failure'];
  const rows = result.trials.map((t, i) => [i + 1, t.trial, ...names.map((name) => t.params[name]), t.valAccuracy, t.valLoss, t.epochs, t.rung, t.seconds.toFixed(1), t.failure]);
  writeFileAtomic(join(outDir, 'trials.csv'), `${[header, ...rows].map((row) => row.map(csvCell).join(',')).join('\n')}\n`);
  writeJsonAtomic(join(outDir, 'trials.json'), { settings: result.settings, rungs: result.rungs, trials: result.trials });
}

/**
 * Evaluates the search's best model on the test set, once: the figures are stored with the
 * study, and a second call returns them without reading the test images again.
 */
export async function evaluateBest(outDir: string, result: SearchResult, options: DataOptions & { backend?: BackendName | 'auto' } = {}): Promise<FinalEvaluation> {
  const storage = await openStorage(result.storage ?? join(resolve(outDir), SQLITE_FILE));
  try {
    const study = await Study.open(storage, result.study);
    const recorded = await study.reads.final();
    if (recorded !== null && recorded.trial === result.best.trial) return recorded;
    const evaluation = await evaluateSavedModel(result.bestDir, { data: options.data, allowModifiedData: options.allowModifiedData, backend: options.backend });
    const final: FinalEvaluation = { trial: result.best.trial, params: result.best.params, valAccuracy: result.best.valAccuracy!, test: evaluation.test };
    await study.results.setFinal(final);
    writeJsonAtomic(join(resolve(outDir), 'best.json'), final);
    return final;
  } finally {
    await storage.close();
  }
}

/** What `runSearchWorker` joins (a study that exists), and where this machine keeps its copies of the trials. */
export interface SearchWorkerOptions extends StudyWorkOptions {
  /** The study's database: a postgresql:// URL, or an SQLite file (or a search folder). */
  storage: string;
  /** The study's name (default: the database's only study). */
  study?: string;
  /** This machine's working copies of the trials (default: a temporary folder, removed at the end). */
  workDir?: string;
}

/**
 * A worker for a study that exists already (`fmnist search worker`): trains its jobs here until
 * none is left, sharing them with every other worker of the study, on this machine or another.
 */
export async function runSearchWorker(options: SearchWorkerOptions): Promise<WorkerReport & { study: string }> {
  const trainers = options.workers ?? availableParallelism();
  const storage = await openStorage(options.storage, { connections: trainers + 2 });
  const workDir = options.workDir ?? mkdtempSync(join(tmpdir(), 'fmnist-worker-'));
  try {
    const study = await Study.open(storage, options.study);
    const halving = study.halving === 'sync' ? 'synchronous' : 'asynchronous';
    options.log?.(`worker: study "${study.name}" in ${storage.location}: ${study.settings.model}, ${study.trialCount} trials, ${halving} halving, rungs at ${study.rungs.join(', ')} epochs; ${trainers} trainer(s)`);
    const recorded = (await study.reads.results()).length;
    const report = await runWorker(study, workerOptions(study, options, trainers, workDir, recorded));
    return { ...report, study: study.name };
  } finally {
    await storage.close();
    if (!options.workDir) rmSync(workDir, { recursive: true, force: true });
  }
}
