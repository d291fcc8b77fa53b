#!/usr/bin/env node
import { Command, CommanderError, Option } from 'commander';
import { realpathSync } from 'node:fs';
import { isAbsolute, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CLASS_NAMES } from '../data/manifest.ts';
import type { LocateOptions } from '../data/locate.ts';
import { UserError } from '../errors.ts';
import { VERSION } from '../version.ts';
import { formatClassificationReport, formatConfusionMatrix } from '../evaluation/metrics.ts';
import { BACKEND_NAMES } from '../kernels/index.ts';
import { summarizeData } from '../runs/data-summary.ts';
import { evaluateSavedModel } from '../runs/evaluate-saved.ts';
import { DEFAULT_MLP_CONFIG, type MlpConfig } from '../runs/mlp-config.ts';
import { trainMlp, type TestMetrics } from '../runs/train-mlp.ts';
import * as parse from './parse.ts';
import { progressReporter } from './progress.ts';

const d = DEFAULT_MLP_CONFIG;

interface DataFlags {
  dataDir?: string;
  allowModifiedData?: boolean;
}

function locateOptions(flags: DataFlags): LocateOptions {
  return { dataDir: flags.dataDir, download: { onFile: (name, url) => process.stderr.write(`downloading ${name} from ${url}\n`) } };
}

function addDataOptions(command: Command): Command {
  return command
    .option('--data-dir <dir>', 'folder holding the four Fashion-MNIST files (default: $FASHION_MNIST_DIR, then the Debian package, then ~/.cache/fashion-mnist, else download)')
    .option('--allow-modified-data', 'load data files whose content differs from the official release instead of refusing them', false);
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

export function buildProgram(): Command {
  const program = new Command('fmnist')
    .description('Fashion-MNIST classification with neural networks written from scratch in TypeScript.')
    .version(VERSION)
    .exitOverride();

  const train = program.command('train').description('train a model on the training split, then evaluate it on the test set');
  addDataOptions(
    train
      .command('mlp')
      .description('train the from-scratch MLP (784 -> hidden ReLU -> 10 softmax) on raw pixels')
      .option('--hidden <units>', 'hidden ReLU units', parse.positiveInteger, d.hidden)
      .option('--epochs <n>', 'most epochs to train (early stopping may end sooner)', parse.positiveInteger, d.epochs)
      .option('--batch-size <n>', 'examples per mini-batch', parse.positiveInteger, d.batchSize)
      .option('--lr <rate>', 'peak learning rate', parse.positiveNumber, d.learningRate)
      .addOption(new Option('--optimizer <name>', 'optimiser').choices(['adam', 'sgd']).default(d.optimizer))
      .option('--momentum <m>', 'SGD momentum (0 = none)', parse.rate, d.momentum)
      .option('--nesterov', 'SGD: use Nesterov momentum', d.nesterov)
      .option('--weight-decay <lambda>', 'L2 penalty on the weights', parse.nonNegativeNumber, d.weightDecay)
      .option('--dropout <rate>', 'dropout rate after the hidden layer (0 = none)', parse.rate, d.dropout)
      .addOption(new Option('--schedule <name>', 'learning-rate schedule').choices(['constant', 'step', 'cosine']).default(d.schedule))
      .addOption(new Option('--init <name>', 'weight initialisation').choices(['he', 'xavier']).default(d.init))
      .option('--patience <epochs>', 'stop after this many epochs without a better validation accuracy (0 = never)', parse.nonNegativeInteger, d.patience)
      .option('--validation-fraction <f>', 'share of the training images held out for validation', parse.openFraction, d.validationFraction)
      .option('--train-limit <n>', 'train on a stratified sample of this many images, for a quick look (default: all)', parse.positiveInteger)
      .option('--seed <n>', 'seed of every random choice', parse.seed, d.seed)
      .addOption(new Option('--backend <name>', 'kernel backend (auto = the fastest available)').choices([...BACKEND_NAMES, 'auto']).default(d.backend))
      .option('--threads <n>', 'threads for the wasm backend (default: every core)', parse.positiveInteger)
      .option('--out <dir>', 'run folder to write (default: runs/mlp-<date>-<time>)'),
  ).action(async (flags) => {
    const config: MlpConfig = {
      hidden: flags.hidden,
      epochs: flags.epochs,
      batchSize: flags.batchSize,
      learningRate: flags.lr,
      optimizer: flags.optimizer,
      momentum: flags.momentum,
      nesterov: flags.nesterov,
      weightDecay: flags.weightDecay,
      dropout: flags.dropout,
      schedule: flags.schedule,
      init: flags.init,
      patience: flags.patience,
      validationFraction: flags.validationFraction,
      seed: flags.seed,
      trainLimit: flags.trainLimit ?? null,
      backend: flags.backend,
      threads: flags.threads ?? null,
    };
    const outDir: string = flags.out ?? `runs/mlp-${timestamp()}`;
    const result = await trainMlp(config, {
      outDir,
      data: locateOptions(flags),
      allowModifiedData: flags.allowModifiedData,
      onProgress: progressReporter(),
      log: (message) => process.stderr.write(`${message}\n`),
    });
    const best = result.history[result.bestEpoch - 1];
    const perEpoch = result.trainingSeconds / result.history.length;
    console.log(
      `\ntrained ${result.history.length} epochs in ${result.trainingSeconds.toFixed(1)} s (${perEpoch.toFixed(1)} s/epoch); ` +
        `best validation accuracy ${(best.valAccuracy * 100).toFixed(2)}% at epoch ${result.bestEpoch}`,
    );
    printTestMetrics(result.test);
    console.log(`run folder: ${displayPath(outDir)}`);
  });

  addDataOptions(
    program
      .command('evaluate')
      .description('evaluate a saved model on the test set and compare with the figures recorded when it was trained')
      .requiredOption('--model <dir>', 'run folder holding model.json and model.safetensors')
      .addOption(new Option('--backend <name>', 'kernel backend (auto = the fastest available)').choices([...BACKEND_NAMES, 'auto']).default('auto'))
      .option('--threads <n>', 'threads for the wasm backend (default: every core)', parse.positiveInteger),
  ).action(async (flags) => {
    const result = await evaluateSavedModel(flags.model, {
      data: locateOptions(flags),
      allowModifiedData: flags.allowModifiedData,
      backend: flags.backend,
      threads: flags.threads,
    });
    console.log(`model: ${result.description.kind} from ${flags.model}`);
    printTestMetrics(result.test);
    if (result.recordedAccuracy !== null) {
      const same = result.recordedAccuracy === result.test.accuracy;
      console.log(
        same
          ? `matches the test accuracy recorded in metrics.json (${(result.recordedAccuracy * 100).toFixed(2)}%)`
          : `differs from the test accuracy recorded in metrics.json (${(result.recordedAccuracy * 100).toFixed(2)}%)`,
      );
    }
  });

  addDataOptions(
    program.command('data').description('show where the data was found, whether each file is the official one, and the counts per class'),
  ).action(async (flags) => {
    const summary = await summarizeData({ data: locateOptions(flags), allowModifiedData: flags.allowModifiedData });
    console.log(`data folder: ${summary.location.dir} (found via ${summary.location.origin})\n`);
    for (const check of summary.checks) console.log(`${check.status === 'verified' ? 'ok      ' : 'MODIFIED'} ${check.file}  sha256 ${check.sha256}`);
    const { train, validation, test } = summary.counts;
    const sum = (counts: number[]) => counts.reduce((a, b) => a + b, 0);
    console.log(`\n${'class'.padEnd(16)}${'train'.padStart(8)}${'val'.padStart(8)}${'test'.padStart(8)}`);
    CLASS_NAMES.forEach((name, c) => {
      console.log(`${`${c} ${name}`.padEnd(16)}${String(train[c]).padStart(8)}${String(validation[c]).padStart(8)}${String(test[c]).padStart(8)}`);
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
