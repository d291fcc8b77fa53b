/**
 * The training options, declared once: each configuration field's flag, value type and help.
 * The CLI derives its flags (with their defaults from configs.ts) and the search derives the
 * parameters a space may vary from these tables; the type of each table makes sure that every
 * configuration field has exactly one option. The web app builds its training form, the form's
 * checks and the command it shows from them too, so this file imports nothing that needs Node.
 */
import { BACKEND_NAMES } from '../kernels/types.ts';
import { SCHEDULE_NAMES } from '../training/schedules.ts';
import type { CnnConfig, ImageConfig, MlpConfig, TrainingConfig } from './configs.ts';

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
  /** A number's range, for a form's field: its bounds (each included unless said) and whether it is whole. */
  readonly range?: NumberRange;
  /** The value as its flag writes it (default: String(value)). */
  format?(value: T): string;
  /** Null is a value too: the flag's absence (a form's empty field). */
  readonly nullable?: boolean;
}

/** The numbers a number type allows: from `min` to `max`, each bound included unless `above`/`below` say otherwise. */
export interface NumberRange {
  integer: boolean;
  min?: number;
  max?: number;
  /** `min` itself is not allowed (a learning rate above 0). */
  above?: boolean;
  /** `max` itself is not allowed (a rate below 1). */
  below?: boolean;
}

function inRange(value: number, range: NumberRange): boolean {
  const { min, max } = range;
  if (min !== undefined && (range.above ? value <= min : value < min)) return false;
  return max === undefined || (range.below ? value < max : value <= max);
}

function numberType(describe: string, range: NumberRange): ValueType<number> {
  const { integer } = range;
  const check = (value: unknown): value is number => typeof value === 'number' && Number.isFinite(value) && (!integer || Number.isSafeInteger(value)) && inRange(value, range);
  return {
    describe,
    range,
    check,
    parse(text) {
      if (integer ? !/^\s*\d+\s*$/.test(text) : text.trim() === '') return undefined;
      const value = Number(text);
      return check(value) ? value : undefined;
    },
  };
}

export const positiveInteger = numberType('a whole number of at least 1', { integer: true, min: 1 });
export const nonNegativeInteger = numberType('a whole number of at least 0', { integer: true, min: 0 });
export const positiveNumber = numberType('a number greater than 0', { integer: false, min: 0, above: true });
export const nonNegativeNumber = numberType('a number of at least 0', { integer: false, min: 0 });
/** A whole number from `min` to `max`, both included (a port, a count with a ceiling). */
export function integerBetween(min: number, max: number): ValueType<number> {
  return numberType(`a whole number from ${min} to ${max}`, { integer: true, min, max });
}
/** A probability-like rate in [0, 1). */
export const rate = numberType('a number from 0 up to (not including) 1', { integer: false, min: 0, max: 1, below: true });
/** A fraction strictly between 0 and 1. */
export const openFraction = numberType('a number strictly between 0 and 1', { integer: false, min: 0, max: 1, above: true, below: true });
/** A seed: a whole number 0 .. 2^32 - 1. */
export const seed = numberType('a whole number from 0 to 4294967295', { integer: true, min: 0, max: 0xffffffff });

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
  return { ...type, nullable: true, check: (value): value is T | null => value === null || type.check(value) };
}

const channelList: ValueType<number[]> = {
  describe: 'five whole numbers of at least 1, separated by commas',
  format: (channels) => channels.join(','),
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

/** The flag itself, without its value's placeholder: `--lr`. */
export function flagName(spec: Pick<OptionSpec<unknown>, 'flag'>): string {
  return spec.flag.split(' ')[0];
}

/**
 * The flags that give `config` to a command whose defaults are `defaults`: each field that
 * differs (and those of `always`), in the table's order, as the CLI reads them (cli/parse.ts):
 * `--lr 0.003`, a switch as `--batch-norm` or, where it is on by default, `--no-batch-norm`. A
 * nullable field left null is left out (its absence is null).
 */
export function commandFlags<C>(table: OptionTable<C>, config: C, defaults: Readonly<C>, always: readonly (keyof C)[] = []): string[] {
  const flags: string[] = [];
  for (const key of Object.keys(table) as (keyof C)[]) {
    const spec = table[key];
    const value = config[key];
    const same = JSON.stringify(value) === JSON.stringify(defaults[key]);
    if ((same && !always.includes(key)) || value === null || value === undefined) continue;
    if (typeof value === 'boolean') {
      if (value) flags.push(flagName(spec));
      else if (defaults[key] === true) flags.push(flagName(spec).replace(/^--/, '--no-'));
      continue;
    }
    flags.push(`${flagName(spec)} ${spec.type.format ? spec.type.format(value) : String(value)}`);
  }
  return flags;
}

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
  lookahead: { flag: '--lookahead <steps>', type: nonNegativeInteger, help: 'Lookahead: steps between syncs of slow and trained weights (0 = none)', searchable: true },
  averageEpochs: { flag: '--average-epochs <k>', type: nonNegativeInteger, help: 'keep the mean of the weights at the ends of the last k epochs (0 or 1 = none)', searchable: true },
  patience: { flag: '--patience <epochs>', type: nonNegativeInteger, help: 'stop after this many epochs without a better validation accuracy (0 = never)' },
  validationFraction: { flag: '--validation-fraction <f>', type: openFraction, help: 'share of the training images held out for validation' },
  trainLimit: { flag: '--train-limit <n>', type: optional(positiveInteger), help: 'train on a stratified sample of this many images, for a quick look (default: all)' },
  seed: { flag: '--seed <n>', type: seed, help: 'seed of every random choice' },
  backend: { flag: '--backend <name>', type: oneOf([...BACKEND_NAMES, 'auto'] as const), help: 'kernel backend (auto = the fastest available)' },
  threads: { flag: '--threads <n>', type: optional(positiveInteger), help: 'threads for the wasm and native backends (default: every core)' },
};

/** The options of a model on pixels: augmentation and test-time flipping. */
export const IMAGE_OPTIONS: OptionTable<ImageConfig> = {
  augmentShift: { flag: '--augment-shift <pixels>', type: nonNegativeInteger, help: 'random shifts of up to this many pixels while training (0 = none)', searchable: true },
  augmentFlip: { flag: '--augment-flip', type: flag, help: 'random horizontal flips while training', searchable: true },
  alternateFlip: { flag: '--alternate-flip', type: flag, help: 'with --augment-flip: mirror each image every other epoch instead of at random' },
  augmentErase: { flag: '--augment-erase <p>', type: rate, help: 'random erasing: share of training images with a rectangle of noise (0 = none)', searchable: true },
  testFlip: { flag: '--test-flip', type: flag, help: 'average the probabilities of each image and its mirror image when evaluating and predicting', searchable: true },
};

/** The MLP's own options. */
export const MLP_OPTIONS: OptionTable<Omit<MlpConfig, keyof TrainingConfig | keyof ImageConfig>> = {
  hidden: { flag: '--hidden <units>', type: positiveInteger, help: 'hidden ReLU units', searchable: true },
  dropout: { flag: '--dropout <rate>', type: rate, help: 'dropout rate after the hidden layer (0 = none)', searchable: true },
  init: { flag: '--init <name>', type: oneOf(['he', 'xavier'] as const), help: 'weight initialisation' },
};

/** The CNN's own options. */
export const CNN_OPTIONS: OptionTable<Omit<CnnConfig, keyof TrainingConfig | keyof ImageConfig>> = {
  channels: { flag: '--channels <list>', type: channelList, help: 'filters of the five convolutions, comma-separated' },
  features: { flag: '--features <n>', type: positiveInteger, help: 'size of the feature layer', searchable: true },
  convDropout: { flag: '--conv-dropout <rate>', type: rate, help: 'dropout after the last pooling (0 = none)', searchable: true },
  featureDropout: { flag: '--feature-dropout <rate>', type: rate, help: 'dropout after the feature layer (0 = none)', searchable: true },
  batchNorm: { flag: '--batch-norm', type: flag, help: 'batch normalisation after each convolution and the feature layer' },
  whiten: { flag: '--whiten', type: flag, help: "first convolution from the training images' whitened 3x3 patches, frozen" },
  diracInit: { flag: '--dirac-init', type: flag, help: 'identity initialisation of convolutions 2 to 5' },
  batchNormBiasLr: { flag: '--batch-norm-bias-lr <factor>', type: positiveNumber, help: "batch normalisation's shifts learn this many times faster", searchable: true },
};

/** Every option of an MLP's configuration, and of the CNN's. */
export const MLP_CONFIG_OPTIONS: OptionTable<MlpConfig> = { ...TRAINING_OPTIONS, ...MLP_OPTIONS, ...IMAGE_OPTIONS };
export const CNN_CONFIG_OPTIONS: OptionTable<CnnConfig> = { ...TRAINING_OPTIONS, ...CNN_OPTIONS, ...IMAGE_OPTIONS };
