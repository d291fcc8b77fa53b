/**
 * The training options, declared once: each configuration field's flag, value type and help.
 * The CLI derives its flags (with their defaults from configs.ts) and the search derives the
 * parameters a space may vary from these tables; the type of each table makes sure that every
 * configuration field has exactly one option.
 */
import { BACKEND_NAMES } from '../kernels/index.ts';
import { SCHEDULE_NAMES } from '../training/schedules.ts';
import type { CnnConfig, MlpConfig, TrainingConfig } from './configs.ts';

/** A kind of value: how to read it from a flag, how to check one given in JSON, how to name it. */
export interface ValueType<T> {
  /** What a valid value is, for messages: "a whole number of at least 1". */
  readonly describe: string;
  /** The value of a flag's text, or undefined when the text is not one. */
  parse(text: string): T | undefined;
  /** Whether a value (from a search space or a file) is one. */
  check(value: unknown): value is T;
  /** The allowed values, where there is a fixed list. */
  readonly choices?: readonly string[];
}

function numberType(describe: string, valid: (value: number) => boolean, integer: boolean): ValueType<number> {
  const check = (value: unknown): value is number => typeof value === 'number' && Number.isFinite(value) && (!integer || Number.isSafeInteger(value)) && valid(value);
  return {
    describe,
    check,
    parse(text) {
      if (integer ? !/^\s*\d+\s*$/.test(text) : text.trim() === '') return undefined;
      const value = Number(text);
      return check(value) ? value : undefined;
    },
  };
}

export const positiveInteger = numberType('a whole number of at least 1', (v) => v >= 1, true);
export const nonNegativeInteger = numberType('a whole number of at least 0', (v) => v >= 0, true);
export const positiveNumber = numberType('a number greater than 0', (v) => v > 0, false);
export const nonNegativeNumber = numberType('a number of at least 0', (v) => v >= 0, false);
/** A whole number from `min` to `max`, both included (a port, a count with a ceiling). */
export function integerBetween(min: number, max: number): ValueType<number> {
  return numberType(`a whole number from ${min} to ${max}`, (v) => v >= min && v <= max, true);
}
/** A probability-like rate in [0, 1). */
export const rate = numberType('a number from 0 up to (not including) 1', (v) => v >= 0 && v < 1, false);
/** A fraction strictly between 0 and 1. */
export const openFraction = numberType('a number strictly between 0 and 1', (v) => v > 0 && v < 1, false);
/** A seed: a whole number 0 .. 2^32 - 1. */
export const seed = numberType('a whole number from 0 to 4294967295', (v) => v >= 0 && v <= 0xffffffff, true);

export function oneOf<T extends string>(values: readonly T[]): ValueType<T> {
  const check = (value: unknown): value is T => typeof value === 'string' && (values as readonly string[]).includes(value);
  return { describe: values.map((v) => JSON.stringify(v)).join(' or '), choices: values, check, parse: (text) => (check(text) ? text : undefined) };
}

/** A switch: present or not (a flag without a value). */
export const flag: ValueType<boolean> = {
  describe: 'true or false',
  check: (value): value is boolean => typeof value === 'boolean',
  parse: () => true,
};

/** A value or null; the flag's absence gives null. */
function optional<T>(type: ValueType<T>): ValueType<T | null> {
  return { ...type, check: (value): value is T | null => value === null || type.check(value) };
}

const channelList: ValueType<number[]> = {
  describe: 'five whole numbers of at least 1, separated by commas',
  check: (value): value is number[] => Array.isArray(value) && value.length === 5 && value.every((c) => positiveInteger.check(c)),
  parse(text) {
    const channels = text.split(',').map((part) => Number(part.trim()));
    return channelList.check(channels) ? channels : undefined;
  },
};

export interface OptionSpec<T> {
  /** The flag and its value's placeholder: `--lr <rate>`; a switch has no placeholder. */
  flag: string;
  type: ValueType<T>;
  /** One line for --help; a nullable option says what its absence means. */
  help: string;
  /** A hyperparameter search may vary it (see search/space.ts). */
  searchable?: boolean;
}

/** One option per field of a configuration. */
export type OptionTable<C> = { [K in keyof C]-?: OptionSpec<C[K]> };

/** The options of every training command. */
export const TRAINING_OPTIONS: OptionTable<TrainingConfig> = {
  epochs: { flag: '--epochs <n>', type: positiveInteger, help: 'most epochs to train (early stopping may end sooner)' },
  batchSize: { flag: '--batch-size <n>', type: positiveInteger, help: 'examples per mini-batch', searchable: true },
  learningRate: { flag: '--lr <rate>', type: positiveNumber, help: 'peak learning rate', searchable: true },
  optimizer: { flag: '--optimizer <name>', type: oneOf(['adam', 'sgd'] as const), help: 'optimiser (sgd with --momentum)', searchable: true },
  momentum: { flag: '--momentum <m>', type: rate, help: 'SGD momentum (0 = none)' },
  nesterov: { flag: '--nesterov', type: flag, help: 'SGD: use Nesterov momentum' },
  weightDecay: { flag: '--weight-decay <lambda>', type: nonNegativeNumber, help: 'L2 penalty on the weights', searchable: true },
  schedule: { flag: '--schedule <name>', type: oneOf(SCHEDULE_NAMES), help: 'learning-rate schedule' },
  warmup: { flag: '--warmup <fraction>', type: openFraction, help: 'triangular schedule: share of the epochs rising to the peak learning rate', searchable: true },
  labelSmoothing: { flag: '--label-smoothing <e>', type: rate, help: 'label smoothing of the training loss (0 = none)', searchable: true },
  emaDecay: { flag: '--ema <decay>', type: rate, help: 'evaluate and save an exponential moving average of the weights with this decay (0 = none)', searchable: true },
  patience: { flag: '--patience <epochs>', type: nonNegativeInteger, help: 'stop after this many epochs without a better validation accuracy (0 = never)' },
  validationFraction: { flag: '--validation-fraction <f>', type: openFraction, help: 'share of the training images held out for validation' },
  trainLimit: { flag: '--train-limit <n>', type: optional(positiveInteger), help: 'train on a stratified sample of this many images, for a quick look (default: all)' },
  seed: { flag: '--seed <n>', type: seed, help: 'seed of every random choice' },
  backend: { flag: '--backend <name>', type: oneOf([...BACKEND_NAMES, 'auto'] as const), help: 'kernel backend (auto = the fastest available)' },
  threads: { flag: '--threads <n>', type: optional(positiveInteger), help: 'threads for the wasm and native backends (default: every core)' },
};

/** The MLP's own options. */
export const MLP_OPTIONS: OptionTable<Omit<MlpConfig, keyof TrainingConfig>> = {
  hidden: { flag: '--hidden <units>', type: positiveInteger, help: 'hidden ReLU units', searchable: true },
  dropout: { flag: '--dropout <rate>', type: rate, help: 'dropout rate after the hidden layer (0 = none)', searchable: true },
  init: { flag: '--init <name>', type: oneOf(['he', 'xavier'] as const), help: 'weight initialisation' },
};

/** The CNN's own options. */
export const CNN_OPTIONS: OptionTable<Omit<CnnConfig, keyof TrainingConfig>> = {
  channels: { flag: '--channels <list>', type: channelList, help: 'filters of the five convolutions, comma-separated' },
  features: { flag: '--features <n>', type: positiveInteger, help: 'size of the feature layer', searchable: true },
  convDropout: { flag: '--conv-dropout <rate>', type: rate, help: 'dropout after the last pooling (0 = none)', searchable: true },
  featureDropout: { flag: '--feature-dropout <rate>', type: rate, help: 'dropout after the feature layer (0 = none)', searchable: true },
  augmentShift: { flag: '--augment-shift <pixels>', type: nonNegativeInteger, help: 'random shifts of up to this many pixels while training (0 = none)' },
  augmentFlip: { flag: '--augment-flip', type: flag, help: 'random horizontal flips while training' },
  augmentErase: { flag: '--augment-erase <p>', type: rate, help: 'random erasing: share of training images with a rectangle of noise (0 = none)', searchable: true },
  testFlip: { flag: '--test-flip', type: flag, help: 'average the probabilities of each image and its mirror image when evaluating and predicting' },
  batchNorm: { flag: '--batch-norm', type: flag, help: 'batch normalisation after each convolution and the feature layer' },
};

/** Every option of an MLP's configuration, and of the CNN's. */
export const MLP_CONFIG_OPTIONS: OptionTable<MlpConfig> = { ...TRAINING_OPTIONS, ...MLP_OPTIONS };
export const CNN_CONFIG_OPTIONS: OptionTable<CnnConfig> = { ...TRAINING_OPTIONS, ...CNN_OPTIONS };
