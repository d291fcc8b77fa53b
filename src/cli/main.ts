#!/usr/bin/env node
import { Argument, Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { readFileSync, realpathSync } from 'node:fs';
import { isAbsolute, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { LocateOptions } from '../data/locate.ts';
import { CLASS_NAMES } from '../data/manifest.ts';
import { UserError } from '../errors.ts';
import { formatClassificationReport, formatConfusionMatrix } from '../evaluation/metrics.ts';
import { BACKEND_NAMES } from '../kernels/index.ts';
import { DEFAULT_CNN_CONFIG, DEFAULT_MLP_CONFIG, type CnnConfig, type MlpConfig, type TrainingConfig } from '../runs/configs.ts';
import { summarizeData } from '../runs/data-summary.ts';
import { evaluateSavedModel } from '../runs/evaluate-saved.ts';
import { buildReport, type ReportOptions } from '../reports/report.ts';
import { formatSummary, runPipeline } from '../runs/pipeline.ts';
import { evaluateBest, runSearch, searchSettings } from '../search/search.ts';
import { readSpaceFile, SEARCH_MODELS, type SearchModel } from '../search/space.ts';
import { trainCnn } from '../runs/train-cnn.ts';
import { trainMlp, type RunOptions } from '../runs/train-mlp.ts';
import type { ModelRunResult, TestMetrics } from '../runs/train-model.ts';
import { VERSION } from '../version.ts';
import * as parse from './parse.ts';
import { progressReporter } from './progress.ts';

interface DataFlags {
  dataDir?: string;
  allowModifiedData?: boolean;
}

const log = (message: string) => process.stderr.write(`${message}\n`);

function locateOptions(flags: DataFlags): LocateOptions {
  return { dataDir: flags.dataDir, download: { onFile: (name, url) => log(`downloading ${name} from ${url}`) } };
}

function addDataOptions(command: Command): Command {
  return command
    .option('--data-dir <dir>', 'folder holding the four Fashion-MNIST files (default: $FASHION_MNIST_DIR, then the Debian package, then ~/.cache/fashion-mnist, else download)')
    .option('--allow-modified-data', 'load data files whose content differs from the official release instead of refusing them', false);
}

function addBackendOptions(command: Command, defaultBackend: string): Command {
  return command
    .addOption(new Option('--backend <name>', 'kernel backend (auto = the fastest available)').choices([...BACKEND_NAMES, 'auto']).default(defaultBackend))
    .option('--threads <n>', 'threads for the wasm and native backends (default: every core)', parse.positiveInteger);
}

/** The flags every training command shares, with the given model's defaults. */
function addTrainingOptions(command: Command, d: TrainingConfig): Command {
  command
    .option('--epochs <n>', 'most epochs to train (early stopping may end sooner)', parse.positiveInteger, d.epochs)
    .option('--batch-size <n>', 'examples per mini-batch', parse.positiveInteger, d.batchSize)
    .option('--lr <rate>', 'peak learning rate', parse.positiveNumber, d.learningRate)
    .addOption(new Option('--optimizer <name>', 'optimiser').choices(['adam', 'sgd']).default(d.optimizer))
    .option('--momentum <m>', 'SGD momentum (0 = none)', parse.rate, d.momentum)
    .option('--nesterov', 'SGD: use Nesterov momentum', d.nesterov)
    .option('--weight-decay <lambda>', 'L2 penalty on the weights', parse.nonNegativeNumber, d.weightDecay)
    .addOption(new Option('--schedule <name>', 'learning-rate schedule').choices(['constant', 'step', 'cosine']).default(d.schedule))
    .option('--patience <epochs>', 'stop after this many epochs without a better validation accuracy (0 = never)', parse.nonNegativeInteger, d.patience)
    .option('--validation-fraction <f>', 'share of the training images held out for validation', parse.openFraction, d.validationFraction)
    .option('--train-limit <n>', 'train on a stratified sample of this many images, for a quick look (default: all)', parse.positiveInteger)
    .option('--seed <n>', 'seed of every random choice', parse.seed, d.seed);
  addBackendOptions(command, d.backend);
  command
    .option('--out <dir>', 'run folder to write (default: runs/<model>-<date>-<time>)')
    .option('--resume <dir>', 'continue the run in this folder from its last checkpoint (its saved configuration is used)')
    .option('--no-report', 'do not write report.html (charts, galleries) at the end');
  return addDataOptions(command);
}

// Commander hands over the parsed flags untyped.
type Flags = Record<string, never> & Record<string, unknown>;

function trainingConfig(flags: Flags): TrainingConfig {
  return {
    epochs: flags.epochs as number,
    batchSize: flags.batchSize as number,
    learningRate: flags.lr as number,
    optimizer: flags.optimizer as TrainingConfig['optimizer'],
    momentum: flags.momentum as number,
    nesterov: flags.nesterov as boolean,
    weightDecay: flags.weightDecay as number,
    schedule: flags.schedule as TrainingConfig['schedule'],
    patience: flags.patience as number,
    validationFraction: flags.validationFraction as number,
    seed: flags.seed as number,
    trainLimit: (flags.trainLimit as number | undefined) ?? null,
    backend: flags.backend as TrainingConfig['backend'],
    threads: (flags.threads as number | undefined) ?? null,
  };
}

/** Where a run goes: --resume DIR continues DIR; otherwise --out, or a new dated folder. */
function runFolder(flags: Flags, model: string): { outDir: string; resume: boolean } {
  if (flags.resume) return { outDir: flags.resume as string, resume: true };
  return { outDir: (flags.out as string | undefined) ?? `runs/${model}-${timestamp()}`, resume: false };
}

function runOptions(flags: Flags, model: string): RunOptions {
  return { ...runFolder(flags, model), data: locateOptions(flags), allowModifiedData: flags.allowModifiedData as boolean, onProgress: progressReporter(), log };
}

/** A resumed run keeps the configuration it started with. */
function savedConfig<T>(outDir: string, resume: boolean, given: T): T {
  if (!resume) return given;
  try {
    return (JSON.parse(readFileSync(join(outDir, 'config.json'), 'utf8')) as { config: T }).config;
  } catch {
    throw new UserError(`${outDir} holds no run to resume (no readable config.json); check the folder.`);
  }
}

/** A path relative to the current folder when it lies inside it, absolute otherwise. */
function displayPath(path: string): string {
  const fromHere = relative(process.cwd(), path);
  return fromHere === '' ? '.' : fromHere.startsWith('..') || isAbsolute(fromHere) ? resolve(path) : fromHere;
}

function timestamp(date = new Date()): string {
  return date.toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
}

function printTestMetrics(test: TestMetrics): void {
  console.log(`test accuracy: ${(test.accuracy * 100).toFixed(2)}%  (loss ${test.loss.toFixed(4)})\n`);
  console.log(formatClassificationReport(test.report));
  console.log(`\nconfusion matrix (rows: true class, columns: predicted class)\n${formatConfusionMatrix(test.confusionMatrix, CLASS_NAMES)}\n`);
}

function printRun(result: ModelRunResult): void {
  const best = result.history[result.bestEpoch - 1];
  const perEpoch = result.trainingSeconds / result.history.length;
  console.log(
    `\ntrained ${result.history.length} epochs in ${result.trainingSeconds.toFixed(1)} s (${perEpoch.toFixed(1)} s/epoch); ` +
      `best validation accuracy ${(best.valAccuracy * 100).toFixed(2)}% at epoch ${result.bestEpoch}`,
  );
  printTestMetrics(result.test);
  console.log(`run folder: ${displayPath(result.outDir)}`);
}

/** The report's options from the command's data and backend flags. */
function reportOptions(flags: Flags): ReportOptions {
  return {
    data: locateOptions(flags),
    allowModifiedData: flags.allowModifiedData as boolean,
    backend: flags.backend as TrainingConfig['backend'],
    threads: flags.threads as number | undefined,
    log,
  };
}

/**
 * Writes the run's report.html after training. The models are saved by then, so a report that
 * cannot be made is a warning that says how to retry, not a failed run.
 */
async function writeReport(outDir: string, flags: Flags): Promise<void> {
  if (flags.report === false) return;
  try {
    const report = await buildReport(outDir, reportOptions(flags));
    console.log(`report: ${displayPath(report.path)} (charts as SVG and PNG in ${displayPath(join(outDir, 'charts'))})`);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    log(`fmnist: warning: the report was not written (${reason}); the models are saved, run fmnist report ${displayPath(outDir)} to try again.`);
  }
}

function channelList(value: string): number[] {
  const channels = value.split(',').map((part) => Number(part.trim()));
  if (channels.length !== 5 || channels.some((c) => !Number.isInteger(c) || c < 1)) {
    throw new InvalidArgumentError('Expected five whole numbers of at least 1, separated by commas.');
  }
  return channels;
}

export function buildProgram(): Command {
  const program = new Command('fmnist')
    .description('Fashion-MNIST classification with neural networks written from scratch in TypeScript.')
    .version(VERSION)
    .exitOverride();

  const train = program.command('train').description('train one model on the training split, then evaluate it on the test set');

  const m = DEFAULT_MLP_CONFIG;
  addTrainingOptions(
    train
      .command('mlp')
      .description('train the from-scratch MLP (784 -> hidden ReLU -> 10 softmax) on raw pixels')
      .option('--hidden <units>', 'hidden ReLU units', parse.positiveInteger, m.hidden)
      .option('--dropout <rate>', 'dropout rate after the hidden layer (0 = none)', parse.rate, m.dropout)
      .addOption(new Option('--init <name>', 'weight initialisation').choices(['he', 'xavier']).default(m.init)),
    m,
  ).action(async (flags: Flags) => {
    const options = runOptions(flags, 'mlp');
    const given: MlpConfig = { ...trainingConfig(flags), hidden: flags.hidden as number, dropout: flags.dropout as number, init: flags.init as MlpConfig['init'] };
    printRun(await trainMlp(savedConfig(options.outDir, options.resume ?? false, given), options));
    await writeReport(options.outDir, flags);
  });

  const c = DEFAULT_CNN_CONFIG;
  addTrainingOptions(
    train
      .command('cnn')
      .description('train the CNN feature extractor (5 convolutions, a feature layer, a softmax head) on pixels')
      .option('--channels <list>', 'filters of the five convolutions, comma-separated', channelList, [...c.channels])
      .option('--features <n>', 'size of the feature layer', parse.positiveInteger, c.features)
      .option('--conv-dropout <rate>', 'dropout after the last pooling (0 = none)', parse.rate, c.convDropout)
      .option('--feature-dropout <rate>', 'dropout after the feature layer (0 = none)', parse.rate, c.featureDropout)
      .option('--augment-shift <pixels>', 'random shifts of up to this many pixels while training (0 = none)', parse.nonNegativeInteger, c.augmentShift)
      .option('--augment-flip', 'random horizontal flips while training', c.augmentFlip)
      .option('--batch-norm', 'batch normalisation after each convolution and the feature layer', c.batchNorm),
    c,
  ).action(async (flags: Flags) => {
    const options = runOptions(flags, 'cnn');
    const given: CnnConfig = {
      ...trainingConfig(flags),
      channels: flags.channels as number[],
      features: flags.features as number,
      convDropout: flags.convDropout as number,
      featureDropout: flags.featureDropout as number,
      augmentShift: flags.augmentShift as number,
      augmentFlip: flags.augmentFlip as boolean,
      batchNorm: flags.batchNorm as boolean,
    };
    printRun((await trainCnn(savedConfig(options.outDir, options.resume ?? false, given), options)).result);
    await writeReport(options.outDir, flags);
  });

  addDataOptions(
    addBackendOptions(
      program
        .command('pipeline')
        .description('the main job: MLP on pixels, CNN, CNN features saved as .npy, MLP on those features; all evaluated on the test set')
        .option('--out <dir>', 'run folder to write (default: runs/pipeline-<date>-<time>)')
        .option('--quick', 'a first look in under 2 minutes: 10,000 (MLP) and 15,000 (CNN) training images, few epochs', false)
        .option('--seed <n>', 'seed of every random choice', parse.seed, m.seed)
        .option('--resume <dir>', 'continue the pipeline in this folder: finished steps are kept, an interrupted one resumes')
        .option('--no-report', 'do not write report.html (charts, galleries) at the end'),
      'auto',
    ),
  ).action(async (flags: Flags) => {
    const { outDir, resume } = runFolder(flags, 'pipeline');
    const summary = await runPipeline(
      { seed: flags.seed as number, quick: flags.quick as boolean, backend: flags.backend as TrainingConfig['backend'], threads: (flags.threads as number | undefined) ?? null },
      {
        outDir,
        resume,
        data: locateOptions(flags),
        allowModifiedData: flags.allowModifiedData as boolean,
        onStep: (index, total, title) => log(`\n== step ${index}/${total}: ${title}`),
        onProgress: progressReporter(),
        log,
      },
    );
    console.log(`\n${formatSummary(summary)}\n\nrun folder: ${displayPath(outDir)} (summary.json; fmnist evaluate --model ${displayPath(outDir)}/<model> repeats a model's test figures)`);
    await writeReport(outDir, flags);
  });

  addDataOptions(
    program
      .command('search')
      .description('hyperparameter search on the validation split (random or grid, with successive halving); the best model is then evaluated on the test set once')
      .addArgument(new Argument('<model>', 'model to tune').choices(SEARCH_MODELS))
      .option('--space <file>', 'JSON search space (default: the model\'s own; see README)')
      .addOption(new Option('--strategy <name>', 'how trials are chosen').choices(['random', 'grid']).default('random'))
      .option('--trials <n>', 'random search: trials to draw (default: 30, cnn 9)', parse.positiveInteger)
      .option('--no-default-trial', 'random search: do not make the default configuration trial 0')
      .option('--min-epochs <n>', 'epochs of the first rung of successive halving (default: mlp 3, features-mlp 2, cnn 1)', parse.positiveInteger)
      .option('--max-epochs <n>', 'epochs of a trial that survives every rung (default: mlp 30, features-mlp 20, cnn 8)', parse.positiveInteger)
      .option('--no-halving', 'train every trial for --max-epochs (no early stopping of poor trials)')
      .option('--reduction-factor <n>', 'successive halving keeps the best 1/n of the trials at each rung', parse.positiveInteger, 3)
      .option('--train-limit <n>', 'train on a stratified sample of this many images (default: all)', parse.positiveInteger)
      .option('--pipeline <dir>', 'features-mlp: a finished fmnist pipeline run whose features/ and cnn/ to use')
      .option('--seed <n>', 'seed of the trials drawn and of every trial\'s training', parse.seed, m.seed)
      .addOption(new Option('--backend <name>', 'kernel backend of the workers').choices([...BACKEND_NAMES, 'auto']).default('auto'))
      .option('--workers <n>', 'trials trained at once, one thread each (default: every core)', parse.positiveInteger)
      .option('--out <dir>', 'search folder; running the same command again continues the search in it (default: runs/search-<model>)')
      .option('--no-report', 'do not write report.html at the end'),
  ).action(async (model: SearchModel, flags: Flags) => {
    const outDir = (flags.out as string | undefined) ?? `runs/search-${model}`;
    const settings = searchSettings(model, {
      space: flags.space ? readSpaceFile(model, flags.space as string) : undefined,
      strategy: flags.strategy as 'random' | 'grid',
      trials: flags.trials as number | undefined,
      includeDefault: flags.defaultTrial as boolean,
      minEpochs: flags.minEpochs as number | undefined,
      maxEpochs: flags.maxEpochs as number | undefined,
      reductionFactor: flags.reductionFactor as number,
      trainLimit: (flags.trainLimit as number | undefined) ?? null,
      seed: flags.seed as number,
      backend: flags.backend as TrainingConfig['backend'],
      pipelineDir: (flags.pipeline as string | undefined) ?? null,
    });
    if (flags.halving === false) settings.minEpochs = settings.maxEpochs;
    const data = { data: locateOptions(flags), allowModifiedData: flags.allowModifiedData as boolean };
    const percent = (value: number | null) => (value === null ? 'diverged' : `${(value * 100).toFixed(2)}%`);
    const result = await runSearch(settings, {
      ...data,
      outDir,
      workers: flags.workers as number | undefined,
      log,
      onJob: ({ job, done, total, result: finished }) => {
        if (finished) log(`[${done}/${total}] trial ${job.trial} rung ${job.rung} (${finished.epochs} epochs): val ${percent(finished.valAccuracy)} in ${finished.seconds.toFixed(1)} s`);
      },
    });
    console.log(`\nsearch of ${result.trials.length} trials in ${result.seconds.toFixed(1)} s; best first:`);
    for (const trial of result.trials.slice(0, 10)) {
      console.log(`  trial ${String(trial.trial).padStart(3)}  val ${percent(trial.valAccuracy).padStart(8)}  ${String(trial.epochs).padStart(3)} epochs  ${JSON.stringify(trial.params)}`);
    }
    const final = await evaluateBest(outDir, result, { ...data, backend: settings.backend });
    console.log(`\nbest: trial ${final.trial}, validation ${percent(final.valAccuracy)}; test accuracy (evaluated once, after the search) ${percent(final.test.accuracy)}`);
    console.log(`search folder: ${displayPath(outDir)} (trials.csv, trials.json, best.json, search.sqlite; the best model in trials/${final.trial})`);
    await writeReport(outDir, flags);
  });

  addDataOptions(
    addBackendOptions(
      program
        .command('report')
        .description('build report.html (curves, confusion matrices, classification reports, sample predictions) from a run folder')
        .argument('<dir>', 'run folder of fmnist pipeline or fmnist train'),
      'auto',
    ),
  ).action(async (dir: string, flags: Flags) => {
    const report = await buildReport(dir, reportOptions(flags));
    console.log(`report: ${displayPath(report.path)} (${report.charts.length} chart files in ${displayPath(join(dir, 'charts'))})`);
  });

  addDataOptions(
    addBackendOptions(
      program
        .command('evaluate')
        .description('evaluate a saved model (any kind) on the test set and compare with the figures recorded when it was trained')
        .requiredOption('--model <dir>', 'folder holding model.json and model.safetensors'),
      'auto',
    ),
  ).action(async (flags: Flags) => {
    const result = await evaluateSavedModel(flags.model as string, {
      data: locateOptions(flags),
      allowModifiedData: flags.allowModifiedData as boolean,
      backend: flags.backend as TrainingConfig['backend'],
      threads: flags.threads as number | undefined,
    });
    console.log(`model: ${result.description.kind} from ${flags.model as string}`);
    printTestMetrics(result.test);
    if (result.recordedAccuracy !== null) {
      const same = result.recordedAccuracy === result.test.accuracy;
      console.log(
        `${same ? 'matches' : 'differs from'} the test accuracy recorded in metrics.json (${(result.recordedAccuracy * 100).toFixed(2)}%)`,
      );
    }
  });

  addDataOptions(
    program.command('data').description('show where the data was found, whether each file is the official one, and the counts per class'),
  ).action(async (flags: Flags) => {
    const summary = await summarizeData({ data: locateOptions(flags), allowModifiedData: flags.allowModifiedData as boolean });
    console.log(`data folder: ${summary.location.dir} (found via ${summary.location.origin})\n`);
    for (const check of summary.checks) console.log(`${check.status === 'verified' ? 'ok      ' : 'MODIFIED'} ${check.file}  sha256 ${check.sha256}`);
    const { train, validation, test } = summary.counts;
    const sum = (counts: number[]) => counts.reduce((a, b) => a + b, 0);
    console.log(`\n${'class'.padEnd(16)}${'train'.padStart(8)}${'val'.padStart(8)}${'test'.padStart(8)}`);
    CLASS_NAMES.forEach((name, i) => {
      console.log(`${`${i} ${name}`.padEnd(16)}${String(train[i]).padStart(8)}${String(validation[i]).padStart(8)}${String(test[i]).padStart(8)}`);
    });
    console.log(`${'total'.padEnd(16)}${String(sum(train)).padStart(8)}${String(sum(validation)).padStart(8)}${String(sum(test)).padStart(8)}`);
  });

  return program;
}

/** Runs the CLI; returns the process exit code. User mistakes print one line, never a stack trace. */
export async function main(argv: string[]): Promise<number> {
  try {
    await buildProgram().parseAsync(argv, { from: 'user' });
    return 0;
  } catch (error) {
    if (error instanceof CommanderError) {
      // Commander has already printed its one-line message (or the help text).
      return error.exitCode === 0 ? 0 : 2;
    }
    if (error instanceof UserError) {
      process.stderr.write(`fmnist: error: ${error.message}\n`);
      return error.exitCode;
    }
    throw error;
  }
}

function isEntryPoint(): boolean {
  if (!process.argv[1]) return false;
  try {
    return realpathSync(process.argv[1]) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isEntryPoint()) {
  process.exitCode = await main(process.argv.slice(2));
}
