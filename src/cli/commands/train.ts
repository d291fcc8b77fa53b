import type { Command } from 'commander';
import { DEFAULT_CNN_CONFIG, DEFAULT_MLP_CONFIG } from '../../runs/configs.ts';
import { CNN_CONFIG_OPTIONS, MLP_CONFIG_OPTIONS } from '../../runs/options.ts';
import { trainCnn, trainMlp, type ModelRunResult, type RunOptions } from '../../runs/train.ts';
import { addConfigOptions, configFromFlags } from '../parse.ts';
import { progressReporter } from '../progress.ts';
import { addRunOptions, displayPath, locateOptions, log, printTestMetrics, runFolder, runResumable, writeReport, type BackendFlags, type DataFlags, type RunFlags } from '../shared.ts';

/** The flags of `train mlp` and `train cnn` besides the configuration's own. */
type TrainFlags = DataFlags & RunFlags & BackendFlags & Record<string, unknown>;

function runOptions(flags: TrainFlags, model: string): RunOptions {
  return { ...runFolder(flags, model), data: locateOptions(flags), allowModifiedData: flags.allowModifiedData, onProgress: progressReporter(), log };
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

/** `fmnist train mlp|cnn`: every configuration field a flag (runs/options.ts), defaults from runs/configs.ts. */
export function addTrainCommands(program: Command): void {
  const train = program.command('train').description('train one model on the training split, then evaluate it on the test set');

  addRunOptions(
    addConfigOptions(train.command('mlp').description('train the from-scratch MLP (784 -> hidden ReLU -> 10 softmax) on raw pixels'), MLP_CONFIG_OPTIONS, DEFAULT_MLP_CONFIG),
    'mlp',
  ).action(async (flags: TrainFlags) => {
    const options = runOptions(flags, 'mlp');
    const result = await runResumable(`fmnist train mlp --resume ${options.outDir}`, (signal) => trainMlp(configFromFlags(MLP_CONFIG_OPTIONS, flags), { ...options, signal }));
    printRun(result);
    await writeReport(options.outDir, flags);
  });

  addRunOptions(
    addConfigOptions(
      train.command('cnn').description('train the CNN feature extractor (5 convolutions, a feature layer, a softmax head) on pixels'),
      CNN_CONFIG_OPTIONS,
      DEFAULT_CNN_CONFIG,
    ),
    'cnn',
  ).action(async (flags: TrainFlags) => {
    const options = runOptions(flags, 'cnn');
    const result = await runResumable(`fmnist train cnn --resume ${options.outDir}`, (signal) => trainCnn(configFromFlags(CNN_CONFIG_OPTIONS, flags), { ...options, signal }));
    printRun(result);
    await writeReport(options.outDir, flags);
  });
}
