import type { Command } from 'commander';
import { DEFAULT_CNN_CONFIG, DEFAULT_MLP_CONFIG } from '../../runs/configs.ts';
import { positiveInteger, seed } from '../../runs/options.ts';
import { formatSummary, runPipeline } from '../../runs/pipeline.ts';
import { parser } from '../parse.ts';
import { progressReporter } from '../progress.ts';
import { addBackendOptions, addDataOptions, displayPath, locateOptions, log, runFolder, runResumable, writeReport, type BackendFlags, type DataFlags, type RunFlags } from '../shared.ts';

interface PipelineFlags extends DataFlags, BackendFlags, RunFlags {
  quick: boolean;
  seed: number;
  cnnEpochs?: number;
}

/** `fmnist pipeline`: the main job (`npm start`). */
export function addPipelineCommand(program: Command): void {
  addDataOptions(
    addBackendOptions(
      program
        .command('pipeline')
        .description('the main job: MLP on pixels, CNN, CNN features saved as .npy, MLP on those features; all evaluated on the test set')
        .option('--out <dir>', 'run folder to write (default: runs/pipeline-<date>-<time>)')
        .option('--quick', 'a first look in under 2 minutes: 10,000 (MLP) and 15,000 (CNN) training images, few epochs', false)
        .option('--seed <n>', 'seed of every random choice', parser(seed), DEFAULT_MLP_CONFIG.seed)
        .option('--cnn-epochs <n>', `epochs of the CNN, instead of its ${DEFAULT_CNN_CONFIG.epochs} (its learning-rate schedule spans them)`, parser(positiveInteger))
        .option('--resume <dir>', 'continue the pipeline in this folder: finished steps are kept, an interrupted one resumes')
        .option('--no-report', 'do not write report.html (charts, galleries) at the end'),
    ),
  ).action(async (flags: PipelineFlags) => {
    const { outDir, resume } = runFolder(flags, 'pipeline');
    const summary = await runResumable(`fmnist pipeline --resume ${outDir}`, (signal) =>
      runPipeline(
        {
          seed: flags.seed,
          quick: flags.quick,
          backend: flags.backend,
          threads: flags.threads ?? null,
          overrides: flags.cnnEpochs ? { cnn: { epochs: flags.cnnEpochs } } : undefined,
        },
        {
          outDir,
          resume,
          data: locateOptions(flags),
          allowModifiedData: flags.allowModifiedData,
          onStep: (index, total, title) => log(`\n== step ${index}/${total}: ${title}`),
          onProgress: progressReporter(),
          log,
          signal,
        },
      ),
    );
    console.log(`\n${formatSummary(summary)}\n\nrun folder: ${displayPath(outDir)} (summary.json; fmnist evaluate --model ${displayPath(outDir)}/<model> repeats a model's test figures)`);
    await writeReport(outDir, flags);
  });
}
