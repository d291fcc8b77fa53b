import { Argument, Option, type Command } from 'commander';
import type { BackendName } from '../../kernels/index.ts';
import { BACKEND_NAMES } from '../../kernels/index.ts';
import { DEFAULT_MLP_CONFIG } from '../../runs/configs.ts';
import { positiveInteger, seed } from '../../runs/options.ts';
import { evaluateBest, runSearch, searchSettings } from '../../search/search.ts';
import { readSpaceFile, SEARCH_MODELS, type SearchModel } from '../../search/space.ts';
import { parser } from '../parse.ts';
import { addDataOptions, displayPath, locateOptions, log, percent, writeReport, type DataFlags } from '../shared.ts';

interface SearchFlags extends DataFlags {
  space?: string;
  strategy: 'random' | 'grid';
  trials?: number;
  /** False with --no-default-trial. */
  defaultTrial: boolean;
  minEpochs?: number;
  maxEpochs?: number;
  /** False with --no-halving. */
  halving: boolean;
  reductionFactor: number;
  trainLimit?: number;
  pipeline?: string;
  seed: number;
  backend: BackendName | 'auto';
  workers?: number;
  out?: string;
  report: boolean;
}

/** `fmnist search`: a hyperparameter search on the validation split. */
export function addSearchCommand(program: Command): void {
  addDataOptions(
    program
      .command('search')
      .description('hyperparameter search on the validation split (random or grid, with successive halving); the best model is then evaluated on the test set once')
      .addArgument(new Argument('<model>', 'model to tune').choices(SEARCH_MODELS))
      .option('--space <file>', "JSON search space (default: the model's own; see docs/search.md)")
      .addOption(new Option('--strategy <name>', 'how trials are chosen').choices(['random', 'grid']).default('random'))
      .option('--trials <n>', 'random search: trials to draw (default: 30, cnn 9)', parser(positiveInteger))
      .option('--no-default-trial', 'random search: do not make the default configuration trial 0')
      .option('--min-epochs <n>', 'epochs of the first rung of successive halving (default: mlp 3, features-mlp 2, cnn 1)', parser(positiveInteger))
      .option('--max-epochs <n>', 'epochs of a trial that survives every rung (default: mlp 30, features-mlp 20, cnn 8)', parser(positiveInteger))
      .option('--no-halving', 'train every trial for --max-epochs (no early stopping of poor trials)')
      .option('--reduction-factor <n>', 'successive halving keeps the best 1/n of the trials at each rung', parser(positiveInteger), 3)
      .option('--train-limit <n>', 'train on a stratified sample of this many images (default: all)', parser(positiveInteger))
      .option('--pipeline <dir>', 'features-mlp: a finished fmnist pipeline run whose features/ and cnn/ to use')
      .option('--seed <n>', "seed of the trials drawn and of every trial's training", parser(seed), DEFAULT_MLP_CONFIG.seed)
      .addOption(new Option('--backend <name>', 'kernel backend of the workers').choices([...BACKEND_NAMES, 'auto']).default('auto'))
      .option('--workers <n>', 'trials trained at once, one thread each (default: every core)', parser(positiveInteger))
      .option('--out <dir>', 'search folder; running the same command again continues the search in it (default: runs/search-<model>)')
      .option('--no-report', 'do not write report.html at the end'),
  ).action(async (model: SearchModel, flags: SearchFlags) => {
    const outDir = flags.out ?? `runs/search-${model}`;
    const settings = searchSettings(model, {
      space: flags.space ? readSpaceFile(model, flags.space) : undefined,
      strategy: flags.strategy,
      trials: flags.trials,
      includeDefault: flags.defaultTrial,
      minEpochs: flags.minEpochs,
      maxEpochs: flags.maxEpochs,
      reductionFactor: flags.reductionFactor,
      trainLimit: flags.trainLimit ?? null,
      seed: flags.seed,
      backend: flags.backend,
      pipelineDir: flags.pipeline ?? null,
    });
    if (!flags.halving) settings.minEpochs = settings.maxEpochs;
    const data = { data: locateOptions(flags), allowModifiedData: flags.allowModifiedData };
    const result = await runSearch(settings, {
      ...data,
      outDir,
      workers: flags.workers,
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
}
