/**
 * What defines a search and what every part of it shares: the settings saved with its study
 * (and their defaults), the training configuration its trials start from, the options of a
 * process that trains a study's jobs (`fmnist search` and `fmnist search worker` alike), and the
 * event such a process reports for each job. A module of types and defaults: it imports none of
 * the study's code, so the study, the worker and the search all import it without a cycle.
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { DataOptions } from '../data/prepare.ts';
import { UserError } from '../errors.ts';
import type { BackendName } from '../kernels/index.ts';
import type { CnnConfig, MlpConfig } from '../runs/configs.ts';
import type { Halving } from './halving.ts';
import { DEFAULT_SPACES, defaultConfig, type SearchModel, type SearchSpace } from './space.ts';
import type { Engine } from './storage.ts';
import type { RungResult } from './trial.ts';

/** Everything that defines a search; saved with its study so that a rerun continues the same one. */
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
  /** Synchronous halving (the same results whichever worker finishes first) or asynchronous (ASHA: no worker waits). */
  halving: Halving;
  /** Train on a stratified sample of this many images (quick searches); null = all 48,000. */
  trainLimit: number | null;
  backend: BackendName | 'auto';
  /** features-mlp: the folder of a finished pipeline run, whose features/ and cnn/ are used. */
  pipelineDir: string | null;
}

/**
 * The settings of a search about to start: `halving` may be left out, for the study's database
 * to decide (resolveSettings) when the study is created.
 */
export type SearchRequest = Omit<SearchSettings, 'halving'> & { halving?: Halving };

/**
 * The settings of a request in a database of `engine`: the halving asked for, else synchronous
 * on SQLite (one machine: the same results however the jobs are shared) and asynchronous on
 * PostgreSQL (workers on many machines, none waiting for a rung's last job).
 */
export function resolveSettings(request: SearchRequest, engine: Engine): SearchSettings {
  return { ...request, halving: request.halving ?? (engine === 'postgresql' ? 'async' : 'sync') };
}

/** The settings a search is run with: the model's default space and budgets, then what is given. */
export function searchSettings(model: SearchModel, given: Partial<SearchSettings> = {}): SearchRequest {
  const budgets = { mlp: { trials: 30, minEpochs: 3, maxEpochs: 30 }, 'features-mlp': { trials: 30, minEpochs: 2, maxEpochs: 20 }, cnn: { trials: 9, minEpochs: 1, maxEpochs: 8 } }[model];
  const settings: SearchRequest = {
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

/** The training configuration every trial starts from: the model's defaults over the study's budget, seed and data, on one thread. */
export function baseConfig(settings: SearchRequest): MlpConfig | CnnConfig {
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

/** A job started on this machine (no result yet) or recorded. */
export interface SearchEvent {
  trial: number;
  rung: number;
  /** Epochs the job trains to. */
  epochs: number;
  result?: RungResult;
  /** Results recorded in the study so far (by every worker, as this process counts them). */
  done: number;
  /** Jobs the study will run in all: known under synchronous halving, null under asynchronous. */
  total: number | null;
}

/** What a process that trains a study's jobs is told, whether it starts the study (`fmnist search`) or joins it (`fmnist search worker`). */
export interface StudyWorkOptions extends DataOptions {
  /** Where the study lives: a postgresql:// URL shared by workers on many machines, or an SQLite file. */
  storage?: string;
  /** The study's name in its database. */
  study?: string;
  /** Trainer processes here, one thread each (default: every core). */
  workers?: number;
  /** Seconds between checkpoints stored in the database during a rung (default 10; 0: every epoch). */
  checkpointEverySeconds?: number;
  log?: (message: string) => void;
  onJob?: (event: SearchEvent) => void;
}
