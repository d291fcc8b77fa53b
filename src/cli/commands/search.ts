import { Argument, Option, type Command } from 'commander';
import type { BackendName } from '../../kernels/index.ts';
import { BACKEND_NAMES } from '../../kernels/index.ts';
import { DEFAULT_MLP_CONFIG } from '../../runs/configs.ts';
import { nonNegativeInteger, nonNegativeNumber, positiveInteger, positiveNumber, seed } from '../../runs/options.ts';
import { HALVINGS, type Halving } from '../../search/halving.ts';
import { evaluateBest, runSearch, runSearchWorker } from '../../search/search.ts';
import { searchSettings, type SearchEvent } from '../../search/settings.ts';
import { readSpaceFile, SEARCH_MODELS, type SearchModel } from '../../search/space.ts';
import { formatStatus, studyStatus } from '../../search/status.ts';
import { parser } from '../parse.ts';
import { addDataOptions, displayPath, exitOnInterrupt, locateOptions, log, percent, writeReport, type DataFlags } from '../shared.ts';

interface SearchFlags extends DataFlags {
  space?: string;
  strategy: 'random' | 'grid';
  trials?: number;
  /** False with --no-default-trial. */
  defaultTrial: boolean;
  minEpochs?: number;
  maxEpochs?: number;
  /** A mode with --halving, false with --no-halving. */
  halving?: Halving | false;
  reductionFactor: number;
  trainLimit?: number;
  pipeline?: string;
  seed: number;
  backend: BackendName | 'auto';
  workers?: number;
  out?: string;
  report: boolean;
  storage?: string;
  study?: string;
  grace?: number;
  checkpointEvery?: number;
}

interface WorkerFlags extends DataFlags {
  storage: string;
  study?: string;
  workers?: number;
  workDir?: string;
  checkpointEvery?: number;
}

/** One line per recorded result: how far the study is, and what the job reached. */
function logResult({ trial, rung, result, done, total }: SearchEvent): void {
  if (!result) return;
  log(`[${done}${total === null ? '' : `/${total}`}] trial ${trial} rung ${rung} (${result.epochs} epochs): val ${percent(result.valAccuracy)} in ${result.seconds.toFixed(1)} s`);
}

const storageHelp = 'where the study lives: a postgresql://USER@HOST/DB URL, shared by workers on several machines, or an SQLite file';
const checkpointHelp = "store a training trial's checkpoint in the database at most this often, in seconds (0: every epoch; always at the end of a rung)";

/** `fmnist search worker`: join a study and train its jobs until none is left. */
function addWorkerCommand(search: Command): void {
  addDataOptions(
    search
      .command('worker')
      .description('join a study in a search database and train its jobs until none is left; start one on each machine that should share the work')
      .requiredOption('--storage <url>', `${storageHelp} (or a search folder)`)
      .option('--study <name>', "the study's name (default: the database's only study)")
      .option('--workers <n>', 'trials trained at once here, one thread each (default: every core)', parser(positiveInteger))
      .option('--work-dir <dir>', "this machine's working copies of the trials (default: a temporary folder, removed at the end)")
      .option('--checkpoint-every <seconds>', `${checkpointHelp} (default: 10)`, parser(nonNegativeNumber)),
  ).action(async (flags: WorkerFlags) => {
    const stopHandling = exitOnInterrupt('its jobs under way go to another worker after the grace period; start a worker again to help');
    const report = await runSearchWorker({
      storage: flags.storage,
      study: flags.study,
      workers: flags.workers,
      workDir: flags.workDir,
      checkpointEverySeconds: flags.checkpointEvery,
      data: locateOptions(flags),
      allowModifiedData: flags.allowModifiedData,
      log,
      onJob: logResult,
    });
    stopHandling();
    const lost = report.lost > 0 ? `, ${report.lost} taken over by other workers` : '';
    console.log(`worker ${report.id}: ${report.jobs} results recorded${lost}; study "${report.study}" has no job left`);
  });
}

/** `fmnist search status`: where a study stands. */
function addStatusCommand(search: Command): void {
  search
    .command('status')
    .description("a study's trials by state, its rungs' results, the workers seen with their last heartbeat, and the best trial so far")
    .requiredOption('--storage <url>', `${storageHelp} (or a search folder)`)
    .option('--study <name>', "the study's name (default: the database's only study)")
    .option('--json', 'print the status as one JSON object', false)
    .action(async (flags: { storage: string; study?: string; json: boolean }) => {
      const status = await studyStatus(flags.storage, flags.study);
      console.log(flags.json ? JSON.stringify(status) : formatStatus(status));
    });
}

/** `fmnist search`: a hyperparameter search on the validation split. */
export function addSearchCommand(program: Command): void {
  const search = addDataOptions(
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
      .addOption(
        new Option(
          '--halving <mode>',
          'sync: a rung promotes its best once all its results are in (the same results however the jobs are shared); async (ASHA): a trial goes on as soon as it ranks in the top 1/n of its rung so far, so no worker waits (default: sync; async with a postgresql:// --storage)',
        ).choices(HALVINGS),
      )
      .option('--no-halving', 'train every trial for --max-epochs (no early stopping of poor trials)')
      .option('--reduction-factor <n>', 'successive halving keeps the best 1/n of the trials at each rung', parser(positiveInteger), 3)
      .option('--train-limit <n>', 'train on a stratified sample of this many images (default: all)', parser(positiveInteger))
      .option('--pipeline <dir>', 'features-mlp: a finished fmnist pipeline run whose features/ and cnn/ to use')
      .option('--seed <n>', "seed of the trials drawn and of every trial's training", parser(seed), DEFAULT_MLP_CONFIG.seed)
      .addOption(new Option('--backend <name>', 'kernel backend of the workers').choices([...BACKEND_NAMES, 'auto']).default('auto'))
      .option('--workers <n>', 'trials trained at once here, one thread each (default: every core; 0: none here, wait for the workers of other machines)', parser(nonNegativeInteger))
      .option('--out <dir>', 'search folder; running the same command again continues the search in it (default: runs/search-<model>)')
      .option('--storage <url>', `${storageHelp} (default: search.sqlite in the search folder)`)
      .option('--study <name>', "the study's name in the database; workers join it by this name (default: search-<model>)")
      .option('--grace <seconds>', 'a job whose heartbeat is older than this goes to another worker, which resumes it from its last stored checkpoint (default: 60)', parser(positiveNumber))
      .option('--checkpoint-every <seconds>', `${checkpointHelp} (default: 10)`, parser(nonNegativeNumber))
      .option('--no-report', 'do not write report.html at the end'),
  );
  // Flags after `search worker` or `search status` are theirs, not the search's.
  search.enablePositionalOptions().action(async (model: SearchModel, flags: SearchFlags) => {
    const outDir = flags.out ?? `runs/search-${model}`;
    const settings = searchSettings(model, {
      space: flags.space ? readSpaceFile(model, flags.space) : undefined,
      strategy: flags.strategy,
      trials: flags.trials,
      includeDefault: flags.defaultTrial,
      minEpochs: flags.minEpochs,
      maxEpochs: flags.maxEpochs,
      reductionFactor: flags.reductionFactor,
      // Left out: the study's database decides (sync on SQLite, async on PostgreSQL).
      halving: typeof flags.halving === 'string' ? flags.halving : undefined,
      trainLimit: flags.trainLimit ?? null,
      seed: flags.seed,
      backend: flags.backend,
      pipelineDir: flags.pipeline ?? null,
    });
    if (flags.halving === false) settings.minEpochs = settings.maxEpochs;
    const data = { data: locateOptions(flags), allowModifiedData: flags.allowModifiedData };
    const stopHandling = exitOnInterrupt('continue with the same command');
    const result = await runSearch(settings, {
      ...data,
      outDir,
      storage: flags.storage,
      study: flags.study,
      workers: flags.workers,
      graceSeconds: flags.grace,
      checkpointEverySeconds: flags.checkpointEvery,
      log,
      onJob: logResult,
    });
    stopHandling();
    console.log(`\nsearch of ${result.trials.length} trials in ${result.seconds.toFixed(1)} s; best first:`);
    for (const trial of result.trials.slice(0, 10)) {
      console.log(`  trial ${String(trial.trial).padStart(3)}  val ${percent(trial.valAccuracy).padStart(8)}  ${String(trial.epochs).padStart(3)} epochs  ${JSON.stringify(trial.params)}`);
    }
    const final = await evaluateBest(outDir, result, { ...data, backend: settings.backend });
    console.log(`\nbest: trial ${final.trial}, validation ${percent(final.valAccuracy)}; test accuracy (evaluated once, after the search) ${percent(final.test.accuracy)}`);
    const files = result.engine === 'postgresql' ? 'trials.csv, trials.json, best.json' : 'trials.csv, trials.json, best.json, search.sqlite';
    console.log(`search folder: ${displayPath(outDir)} (${files}; the best model in trials/${final.trial})`);
    await writeReport(outDir, flags);
  });
  addWorkerCommand(search);
  addStatusCommand(search);
}
