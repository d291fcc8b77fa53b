import { readFileSync } from 'node:fs';
import { UserError } from '../errors.ts';
import type { Rng } from '../random/rng.ts';
import { DEFAULT_CNN_CONFIG, DEFAULT_FEATURES_MLP_CONFIG, DEFAULT_MLP_CONFIG, type CnnConfig, type MlpConfig } from '../runs/configs.ts';
import { CNN_CONFIG_OPTIONS, MLP_CONFIG_OPTIONS, MLP_OPTIONS, positiveNumber, TRAINING_OPTIONS, type OptionSpec, type ValueType } from '../runs/options.ts';

/** The models a search can tune. */
export type SearchModel = 'mlp' | 'cnn' | 'features-mlp';
export const SEARCH_MODELS: readonly SearchModel[] = ['mlp', 'cnn', 'features-mlp'];

/** How one hyperparameter is drawn (random search) or enumerated (grid search). */
export type ParameterSpec =
  /** Uniform in log space: learning rates, weight decay. Grid: `gridPoints` log-spaced values. */
  | { type: 'log-uniform'; min: number; max: number; gridPoints?: number }
  /** Uniform: dropout rates. Grid: `gridPoints` evenly spaced values. */
  | { type: 'uniform'; min: number; max: number; gridPoints?: number }
  /** One of a list, each equally likely. Grid: every value. */
  | { type: 'choice'; values: (number | string | boolean)[] };

export type SearchSpace = Record<string, ParameterSpec>;

/** One trial's hyperparameters, by name. */
export type TrialParams = Record<string, number | string | boolean>;

/** A parameter a search may vary: its value type and what it is. */
interface Parameter {
  type: ValueType<unknown>;
  help: string;
}

/** The options declared searchable in runs/options.ts. */
function searchable(options: Record<string, OptionSpec<unknown>>): Record<string, Parameter> {
  return Object.fromEntries(Object.entries(options).filter(([, option]) => option.searchable).map(([name, option]) => [name, { type: option.type, help: option.help }]));
}

/** The hyperparameters each model's search may vary: the searchable training options, and the CNN's width. */
const PARAMETERS: Record<SearchModel, Record<string, Parameter>> = {
  mlp: searchable(MLP_CONFIG_OPTIONS),
  // The MLP on features sees no images: no augmentation.
  'features-mlp': searchable({ ...TRAINING_OPTIONS, ...MLP_OPTIONS }),
  cnn: { ...searchable(CNN_CONFIG_OPTIONS), widthMultiplier: { type: positiveNumber, help: 'scales the filters of every convolution' } },
};

/** Each model's default search space. */
export const DEFAULT_SPACES: Record<SearchModel, SearchSpace> = {
  mlp: {
    learningRate: { type: 'log-uniform', min: 3e-4, max: 1e-2 },
    hidden: { type: 'choice', values: [64, 128, 256, 512] },
    dropout: { type: 'uniform', min: 0, max: 0.5 },
    batchSize: { type: 'choice', values: [32, 64, 128] },
    optimizer: { type: 'choice', values: ['adam', 'sgd'] },
    weightDecay: { type: 'choice', values: [0, 1e-5, 1e-4] },
  },
  'features-mlp': {
    learningRate: { type: 'log-uniform', min: 3e-4, max: 1e-2 },
    hidden: { type: 'choice', values: [64, 128, 256, 512] },
    dropout: { type: 'uniform', min: 0, max: 0.6 },
    batchSize: { type: 'choice', values: [32, 64, 128] },
    optimizer: { type: 'choice', values: ['adam', 'sgd'] },
    weightDecay: { type: 'choice', values: [0, 1e-5, 1e-4] },
  },
  cnn: {
    learningRate: { type: 'log-uniform', min: 5e-4, max: 5e-3 },
    batchSize: { type: 'choice', values: [64, 128] },
    widthMultiplier: { type: 'choice', values: [0.5, 1] },
    convDropout: { type: 'uniform', min: 0, max: 0.3 },
    featureDropout: { type: 'uniform', min: 0, max: 0.5 },
  },
};

/** Checks a space against the model's parameters; every mistake is named in one sentence. */
export function validateSpace(model: SearchModel, space: unknown, source: string): SearchSpace {
  const allowed = PARAMETERS[model];
  const fail = (what: string): never => {
    throw new UserError(`${source}: ${what}.`);
  };
  if (typeof space !== 'object' || space === null || Array.isArray(space)) fail('a search space is a JSON object of parameter names');
  const entries = Object.entries(space as Record<string, unknown>);
  if (entries.length === 0) fail('the search space names no parameter');
  for (const [name, raw] of entries) {
    const parameter = allowed[name];
    if (!parameter) fail(`"${name}" is not a parameter of the ${model} search; use ${Object.keys(allowed).join(', ')}`);
    const spec = raw as Partial<ParameterSpec> & Record<string, unknown>;
    const check = (value: number | string | boolean, what: string) => {
      if (!parameter.type.check(value)) fail(`${name}: ${what} ${JSON.stringify(value)} must be ${parameter.type.describe}`);
    };
    if (spec?.type === 'choice') {
      if (!Array.isArray(spec.values) || spec.values.length === 0) fail(`${name}: a choice needs a non-empty "values" list`);
      for (const value of spec.values as (number | string | boolean)[]) check(value, 'value');
    } else if (spec?.type === 'uniform' || spec?.type === 'log-uniform') {
      const { min, max, gridPoints } = spec as { min: unknown; max: unknown; gridPoints?: unknown };
      if (typeof min !== 'number' || typeof max !== 'number' || !(min <= max)) fail(`${name}: ${spec.type} needs numbers "min" <= "max"`);
      check(min as number, 'min');
      check(max as number, 'max');
      if (spec.type === 'log-uniform' && !((min as number) > 0)) fail(`${name}: log-uniform needs "min" above 0`);
      if (gridPoints !== undefined && (typeof gridPoints !== 'number' || !Number.isInteger(gridPoints) || gridPoints < 1)) fail(`${name}: "gridPoints" must be a whole number of at least 1`);
    } else {
      fail(`${name}: "type" must be "log-uniform", "uniform" or "choice"`);
    }
  }
  return space as SearchSpace;
}

export function readSpaceFile(model: SearchModel, path: string): SearchSpace {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new UserError(`Cannot read the search space ${path}: ${error instanceof Error ? error.message : String(error)}.`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new UserError(`${path} is not valid JSON (${error instanceof Error ? error.message : String(error)}).`);
  }
  return validateSpace(model, parsed, path);
}

/** Integers stay integers (hidden units drawn as 64, not 64.0); others keep 4 significant digits. */
function tidy(value: number): number {
  return Number(value.toPrecision(4));
}

/** One random draw of every parameter, in the space's order. */
export function sampleParams(space: SearchSpace, rng: Rng): TrialParams {
  const params: TrialParams = {};
  for (const [name, spec] of Object.entries(space)) {
    if (spec.type === 'choice') params[name] = spec.values[rng.int(spec.values.length)];
    else if (spec.type === 'uniform') params[name] = tidy(spec.min + (spec.max - spec.min) * rng.uniform());
    else params[name] = tidy(Math.exp(Math.log(spec.min) + (Math.log(spec.max) - Math.log(spec.min)) * rng.uniform()));
  }
  return params;
}

function gridValues(spec: ParameterSpec): (number | string | boolean)[] {
  if (spec.type === 'choice') return spec.values;
  const points = spec.gridPoints ?? 3;
  if (points === 1 || spec.min === spec.max) return [spec.type === 'uniform' ? tidy((spec.min + spec.max) / 2) : tidy(Math.sqrt(spec.min * spec.max))];
  return Array.from({ length: points }, (_, i) => {
    const t = i / (points - 1);
    return tidy(spec.type === 'uniform' ? spec.min + (spec.max - spec.min) * t : Math.exp(Math.log(spec.min) + (Math.log(spec.max) - Math.log(spec.min)) * t));
  });
}

/** Every combination of the parameters' grid values, the first parameter varying slowest. */
export function gridParams(space: SearchSpace): TrialParams[] {
  let combinations: TrialParams[] = [{}];
  for (const [name, spec] of Object.entries(space)) {
    combinations = combinations.flatMap((partial) => gridValues(spec).map((value) => ({ ...partial, [name]: value })));
  }
  return combinations;
}

/** A trial's full training configuration: the model's defaults with the trial's parameters. */
export function trialConfig(model: SearchModel, base: MlpConfig | CnnConfig, params: TrialParams): MlpConfig | CnnConfig {
  const config: Record<string, unknown> = { ...base };
  for (const [name, value] of Object.entries(params)) {
    if (name === 'widthMultiplier') {
      config.channels = (base as CnnConfig).channels.map((channels) => Math.max(1, Math.round(channels * (value as number))));
    } else {
      config[name] = value;
    }
  }
  return config as unknown as MlpConfig | CnnConfig;
}

export function defaultConfig(model: SearchModel): MlpConfig | CnnConfig {
  return model === 'cnn' ? { ...DEFAULT_CNN_CONFIG } : model === 'mlp' ? { ...DEFAULT_MLP_CONFIG } : { ...DEFAULT_FEATURES_MLP_CONFIG };
}
