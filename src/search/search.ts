import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join, resolve } from 'node:path';
import { UserError } from '../errors.ts';
import { makeFolder, writeFileAtomic, writeJsonAtomic } from '../io/atomic.ts';
import type { BackendName } from '../kernels/index.ts';
import { Rng } from '../random/rng.ts';
import type { CnnConfig, MlpConfig } from '../runs/configs.ts';
import type { DataOptions } from '../data/prepare.ts';
import { evaluateSavedModel } from '../runs/evaluate.ts';
import type { TestMetrics } from '../evaluation/metrics.ts';
import { VERSION } from '../version.ts';
import { SearchJournal, type RungResult, type TrialRow } from './journal.ts';
import { runJobs } from './pool.ts';
import { DEFAULT_SPACES, defaultConfig, gridParams, sampleParams, trialConfig, type SearchModel, type SearchSpace, type TrialParams } from './space.ts';
import type { TrialJob } from './trial.ts';

/** Everything that defines a search; saved in its journal so that a rerun continues the same one. */
export interface SearchSettings {
  model: SearchModel;
  space: SearchSpace;
  strategy: 'random' | 'grid';
  /** Random search: trials drawn. Grid search: ignored (every combination is a trial). */
  trials: number;
  /** Random search: trial 0 is the model's default configuration (the space's parameters only). */
  includeDefault: boolean;
  seed: number;
  /** Epochs of the first rung of successive halving; equal to maxEpochs: no halving. */
  minEpochs: number;
  /** Epochs a trial that survives every rung trains (its learning-rate schedule spans these). */
  maxEpochs: number;
  /** Successive halving keeps the best 1/factor of the trials at each rung. */
  reductionFactor: number;
  /** Train on a stratified sample of this many images (quick searches); null = all 48,000. */
  trainLimit: number | null;
  backend: BackendName | 'auto';
  /** features-mlp: the folder of a finished pipeline run, whose features/ and cnn/ are used. */
  pipelineDir: string | null;
}

export interface SearchOptions extends DataOptions {
  outDir: string;
  /** Worker processes (one thread each); default: every core. */
  workers?: number;
  log?: (message: string) => void;
  onJob?: (event: { job: TrialJob; done: number; total: number; result?: RungResult }) => void;
}

/** One row of the results table. */
export interface TrialSummary {
  trial: number;
  params: TrialParams;
  /** Best validation accuracy at the last rung the trial reached (null: diverged). */
  valAccuracy: number | null;
  valLoss: number | null;
  epochs: number;
  rung: number;
  seconds: number;
  failure: string | null;
  /** The trial's validation accuracy per epoch. */
  curve: number[];
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
}

/**
 * Epochs at each rung: the last is maxEpochs, each earlier one a reductionFactor-th of the next,
 * down to about minEpochs. For 3..30 epochs and factor 3: [3, 10, 30].
 */
export function rungEpochs(minEpochs: number, maxEpochs: number, factor: number): number[] {
  if (minEpochs >= maxEpochs) return [maxEpochs];
  const steps = Math.floor(Math.log(maxEpochs / minEpochs) / Math.log(factor) + 1e-9);
  const epochs = Array.from({ length: steps + 1 }, (_, k) => Math.max(1, Math.round(maxEpochs / factor ** (steps - k))));
  return epochs.filter((value, i) => i === 0 || value > epochs[i - 1]);
}

/** Trials promoted to each rung: all of them at first, then the best 1/factor of the previous rung. */
export function rungSizes(trials: number, rungs: number, factor: number): number[] {
  const sizes = [trials];
  for (let k = 1; k < rungs; k++) sizes.push(Math.max(1, Math.floor(sizes[k - 1] / factor)));
  return sizes;
}

/** Better first: higher validation accuracy; diverged trials last; ties to the earlier trial. */
function compareResults(a: { valAccuracy: number | null; trial: number }, b: { valAccuracy: number | null; trial: number }): number {
  return (b.valAccuracy ?? -1) - (a.valAccuracy ?? -1) || a.trial - b.trial;
}

function makeTrials(settings: SearchSettings): TrialRow[] {
  if (settings.strategy === 'grid') return gridParams(settings.space).map((params, id) => ({ id, params }));
  const rng = Rng.fromSeed(settings.seed).fork();
  const trials: TrialRow[] = [];
  if (settings.includeDefault) {
    const base = defaultConfig(settings.model) as unknown as Record<string, number | string>;
    const params: TrialParams = {};
    for (const name of Object.keys(settings.space)) params[name] = name === 'widthMultiplier' ? 1 : base[name];
    trials.push({ id: 0, params });
  }
  while (trials.length < settings.trials) trials.push({ id: trials.length, params: sampleParams(settings.space, rng) });
  return trials;
}

function baseConfig(settings: SearchSettings): MlpConfig | CnnConfig {
  return {
    ...defaultConfig(settings.model),
    epochs: settings.maxEpochs,
    patience: 0,
    seed: settings.seed,
    trainLimit: settings.trainLimit,
    backend: settings.backend,
    threads: 1,
  };
}

/** The settings a search is run with: the model's default space and budgets, then what is given. */
export function searchSettings(model: SearchModel, given: Partial<SearchSettings> = {}): SearchSettings {
  const budgets = { mlp: { trials: 30, minEpochs: 3, maxEpochs: 30 }, 'features-mlp': { trials: 30, minEpochs: 2, maxEpochs: 20 }, cnn: { trials: 9, minEpochs: 1, maxEpochs: 8 } }[model];
  const settings: SearchSettings = {
    model,
    space: DEFAULT_SPACES[model],
    strategy: 'random',
    includeDefault: true,
    seed: 42,
    reductionFactor: 3,
    trainLimit: null,
    backend: 'auto',
    pipelineDir: null,
    ...budgets,
    ...Object.fromEntries(Object.entries(given).filter(([, value]) => value !== undefined)),
  };
  // A shorter search than the default's first rung: one rung of what is asked.
  if (given.minEpochs === undefined) settings.minEpochs = Math.min(settings.minEpochs, settings.maxEpochs);
  if (settings.minEpochs > settings.maxEpochs) throw new UserError(`--min-epochs (${settings.minEpochs}) is more than --max-epochs (${settings.maxEpochs}); lower it.`);
  if (settings.reductionFactor < 2) throw new UserError(`--reduction-factor must be at least 2 (got ${settings.reductionFactor}).`);
  if (model === 'features-mlp') {
    if (!settings.pipelineDir) throw new UserError('a features-mlp search needs --pipeline DIR, the folder of a finished fmnist pipeline run (its features/ and cnn/).');
    settings.pipelineDir = resolve(settings.pipelineDir);
    if (!existsSync(join(settings.pipelineDir, 'features', 'train_x.npy'))) throw new UserError(`${settings.pipelineDir} holds no features/train_x.npy; pass the folder of a finished fmnist pipeline run.`);
  }
  return settings;
}

/** The trials' table from the journal, best first. */
function summarize(journal: SearchJournal): TrialSummary[] {
  const results = journal.results();
  const last = new Map<number, RungResult>();
  for (const result of results) if ((last.get(result.trial)?.rung ?? -1) < result.rung) last.set(result.trial, result);
  return journal
    .trials()
    .filter((trial) => last.has(trial.id))
    .map((trial) => {
      const result = last.get(trial.id)!;
      const seconds = results.filter((r) => r.trial === trial.id).reduce((sum, r) => sum + r.seconds, 0);
      return {
        trial: trial.id,
        params: trial.params,
        valAccuracy: result.valAccuracy,
        valLoss: result.valLoss,
        epochs: result.epochs,
        rung: result.rung,
        seconds,
        failure: result.failure,
        curve: result.history.map((record) => record.valAccuracy),
      };
    })
    .sort((a, b) => b.rung - a.rung || compareResults(a, b));
}

export const JOURNAL_FILE = 'search.sqlite';

/**
 * Runs (or continues) a search in outDir: the trials' configurations are drawn once and
 * journaled; each rung trains the trials promoted to it on worker processes, recording each
 * result as it arrives. A killed search run again with the same settings skips every
 * (trial, rung) already recorded and resumes interrupted trials from their checkpoints.
 * Reads only the training data: selection is on the validation split.
 */
export async function runSearch(settings: SearchSettings, options: SearchOptions): Promise<SearchResult> {
  const started = performance.now();
  const outDir = resolve(options.outDir);
  makeFolder(outDir);
  const journal = new SearchJournal(join(outDir, JOURNAL_FILE));
  try {
    const saved = journal.getMeta<SearchSettings>('settings');
    if (saved === null) {
      journal.setMeta('settings', settings);
      journal.setMeta('version', VERSION);
      journal.addTrials(makeTrials(settings));
    } else if (JSON.stringify(saved) !== JSON.stringify(settings)) {
      throw new UserError(`${options.outDir} holds a search with other settings; run it with the same flags to continue it, or choose another --out.`);
    }
    const trials = journal.trials();
    const rungs = rungEpochs(settings.minEpochs, settings.maxEpochs, settings.reductionFactor);
    const sizes = rungSizes(trials.length, rungs.length, settings.reductionFactor);
    const base = baseConfig(settings);
    const total = sizes.reduce((a, b) => a + b, 0);
    options.log?.(`search: ${trials.length} trials, rungs at ${rungs.join(', ')} epochs keeping ${sizes.join(', ')} trials; ${total} jobs`);

    const params = new Map(trials.map((trial) => [trial.id, trial.params]));
    let promoted = trials.map((trial) => trial.id);
    for (let rung = 0; rung < rungs.length; rung++) {
      const recorded = new Set(journal.results().filter((r) => r.rung === rung).map((r) => r.trial));
      const jobs: TrialJob[] = promoted
        .filter((id) => !recorded.has(id))
        .map((id) => ({
          trial: id,
          rung,
          model: settings.model,
          config: trialConfig(settings.model, base, params.get(id)!),
          stopAfterEpoch: rungs[rung],
          dir: join(outDir, 'trials', String(id)),
          pipelineDir: settings.pipelineDir ?? undefined,
        }));
      if (recorded.size > 0 && jobs.length > 0) options.log?.(`rung ${rung}: ${recorded.size} results kept from before, ${jobs.length} to run`);
      let done = journal.results().length;
      await runJobs(jobs, {
        workers: options.workers ?? availableParallelism(),
        setup: { backend: settings.backend, data: { data: options.data, allowModifiedData: options.allowModifiedData } },
        onStart: (job) => {
          journal.recordAttempt(job.trial, job.rung);
          options.onJob?.({ job, done, total });
        },
        onResult: (result) => {
          journal.recordResult(result);
          done++;
          const job = jobs.find((j) => j.trial === result.trial)!;
          options.onJob?.({ job, done, total, result });
        },
      });
      // Promote the best of this rung; the diverged never go on.
      const results = journal.results().filter((r) => r.rung === rung && promoted.includes(r.trial) && r.failure === null);
      promoted = results
        .sort(compareResults)
        .slice(0, sizes[rung + 1] ?? 0)
        .map((r) => r.trial);
      if (promoted.length === 0 && rung + 1 < rungs.length) break;
    }

    const table = summarize(journal);
    // The winner must have trained every epoch: only those trials have a saved model.
    const best = table.find((trial) => trial.rung === rungs.length - 1 && trial.valAccuracy !== null);
    if (!best) throw new UserError('No trial trained to the last rung without diverging; lower the learning rates of the search space and run again.');
    const result: SearchResult = { settings, rungs, trials: table, best, bestDir: join(outDir, 'trials', String(best.trial)), seconds: (performance.now() - started) / 1000 };
    writeResults(outDir, result);
    return result;
  } finally {
    journal.close();
  }
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

export interface FinalEvaluation {
  trial: number;
  params: TrialParams;
  valAccuracy: number;
  test: TestMetrics;
}

/**
 * Evaluates the search's best model on the test set, once: the figures are journaled, and a
 * second call returns them without reading the test images again.
 */
export async function evaluateBest(outDir: string, result: SearchResult, options: DataOptions & { backend?: BackendName | 'auto' } = {}): Promise<FinalEvaluation> {
  const journal = new SearchJournal(join(resolve(outDir), JOURNAL_FILE));
  try {
    const recorded = journal.getMeta<FinalEvaluation>('final');
    if (recorded !== null && recorded.trial === result.best.trial) return recorded;
    const evaluation = await evaluateSavedModel(result.bestDir, { data: options.data, allowModifiedData: options.allowModifiedData, backend: options.backend });
    const final: FinalEvaluation = { trial: result.best.trial, params: result.best.params, valAccuracy: result.best.valAccuracy!, test: evaluation.test };
    journal.setMeta('final', final);
    writeJsonAtomic(join(resolve(outDir), 'best.json'), final);
    return final;
  } finally {
    journal.close();
  }
}
