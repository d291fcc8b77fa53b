/** What the commands share: common flags, messages, paths and the report after a run. */
import { Option, type Command } from 'commander';
import { isAbsolute, join, relative, resolve } from 'node:path';
import { CLASS_NAMES } from '../data/manifest.ts';
import type { LocateOptions } from '../data/locate.ts';
import { Interrupted, UserError } from '../errors.ts';
import { formatClassificationReport, formatConfusionMatrix, type TestMetrics } from '../evaluation/metrics.ts';
import { FileWriteError } from '../io/atomic.ts';
import { BACKEND_NAMES, type BackendName } from '../kernels/index.ts';
import { positiveInteger } from '../runs/options.ts';
import { parser } from './parse.ts';

/** Flags of every command that reads the data (addDataOptions). */
export interface DataFlags {
  dataDir?: string;
  allowModifiedData: boolean;
}

/** Flags of every command that computes (addBackendOptions). */
export interface BackendFlags {
  backend: BackendName | 'auto';
  threads?: number;
}

/** Flags of a command that writes a run folder and its report. */
export interface RunFlags {
  out?: string;
  resume?: string;
  /** False with --no-report. */
  report: boolean;
}

/** Progress and messages go to stderr; results to stdout. */
export const log = (message: string): void => {
  process.stderr.write(`${message}\n`);
};

export function locateOptions(flags: DataFlags): LocateOptions {
  return { dataDir: flags.dataDir, download: { onFile: (name, url) => log(`downloading ${name} from ${url}`) } };
}

export function addDataOptions(command: Command): Command {
  return command
    .option('--data-dir <dir>', 'folder holding the four Fashion-MNIST files (default: $FASHION_MNIST_DIR, then the Debian package, then ~/.cache/fashion-mnist, else download)')
    .option('--allow-modified-data', 'load data files whose content differs from the official release instead of refusing them', false);
}

/** --backend and --threads; `threadsDefault` is a command's own default thread count (applied by the command), said in the help. */
export function addBackendOptions(command: Command, threadsDefault = 'every core'): Command {
  return command
    .addOption(new Option('--backend <name>', 'kernel backend (auto = the fastest CPU backend available; webgpu = the GPU, named where it is used)').choices([...BACKEND_NAMES, 'auto']).default('auto'))
    .option('--threads <n>', `threads for the wasm and native backends (default: ${threadsDefault})`, parser(positiveInteger));
}

/** --out, --resume and --no-report, then the data flags. */
export function addRunOptions(command: Command, folder: string): Command {
  command
    .option('--out <dir>', `run folder to write (default: runs/${folder}-<date>-<time>)`)
    .option('--resume <dir>', 'continue the run in this folder from its last checkpoint (its saved configuration is used)')
    .option('--no-report', 'do not write report.html (charts, galleries) at the end');
  return addDataOptions(command);
}

function timestamp(date = new Date()): string {
  return date.toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
}

/** Where a run goes: --resume DIR continues DIR; otherwise --out, or a new dated folder. */
export function runFolder(flags: RunFlags, name: string): { outDir: string; resume: boolean } {
  if (flags.resume) return { outDir: flags.resume, resume: true };
  return { outDir: flags.out ?? `runs/${name}-${timestamp()}`, resume: false };
}

/** A path relative to the current folder when it lies inside it, absolute otherwise. */
export function displayPath(path: string): string {
  const fromHere = relative(process.cwd(), path);
  return fromHere === '' ? '.' : fromHere.startsWith('..') || isAbsolute(fromHere) ? resolve(path) : fromHere;
}

export const percent = (value: number | null): string => (value === null ? 'diverged' : `${(value * 100).toFixed(2)}%`);

export function printTestMetrics(test: TestMetrics): void {
  console.log(`test accuracy: ${(test.accuracy * 100).toFixed(2)}%  (loss ${test.loss.toFixed(4)})\n`);
  console.log(formatClassificationReport(test.report));
  console.log(`\nconfusion matrix (rows: true class, columns: predicted class)\n${formatConfusionMatrix(test.confusionMatrix, CLASS_NAMES)}\n`);
}

/**
 * Writes the run's report.html after training. The models are saved by then, so a report that
 * cannot be made is a warning that says how to retry, not a failed run.
 */
export async function writeReport(outDir: string, flags: DataFlags & Partial<BackendFlags> & { report: boolean }): Promise<void> {
  if (!flags.report) return;
  try {
    // Imported here: the charts' libraries are slow to load, and most commands write no report.
    const { buildReport } = await import('../reports/report.ts');
    const report = await buildReport(outDir, { data: locateOptions(flags), allowModifiedData: flags.allowModifiedData, backend: flags.backend, threads: flags.threads, log });
    console.log(`report: ${displayPath(report.path)} (charts as SVG and PNG in ${displayPath(join(outDir, 'charts'))})`);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    log(`fmnist: warning: the report was not written (${reason}); the models are saved, run fmnist report ${displayPath(outDir)} to try again.`);
  }
}

/**
 * Runs a job that writes a run folder so that a fault leaves it resumable and says so: the
 * first Ctrl-C (SIGINT) or SIGTERM stops the training between two batches (the last finished
 * epoch's checkpoint is what remains) and the command ends with exit code 130 or 143; a second
 * one quits at once. A refused write (a full disk) and an interrupt end in one sentence with the
 * command that continues: `resume`.
 */
export async function runResumable<T>(resume: string, job: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  const onSignal = (signal: 'SIGINT' | 'SIGTERM') => {
    if (controller.signal.aborted) process.exit(signal === 'SIGINT' ? 130 : 143);
    log(`\nfmnist: ${signal}: stopping after this batch, keeping the last checkpoint (${signal === 'SIGINT' ? 'Ctrl-C' : 'SIGTERM'} again quits at once)`);
    controller.abort(new Interrupted(signal));
  };
  const onInterrupt = () => onSignal('SIGINT');
  const onTerminate = () => onSignal('SIGTERM');
  process.on('SIGINT', onInterrupt);
  process.on('SIGTERM', onTerminate);
  try {
    return await job(controller.signal);
  } catch (error) {
    if (error instanceof Interrupted) {
      throw new UserError(`interrupted by ${error.signal}; the run's last checkpoint is kept, continue with: ${resume}`, error.exitCode);
    }
    if (error instanceof FileWriteError) {
      throw new UserError(`${error.message}; what was saved before is kept: free some space, then continue with: ${resume}`);
    }
    throw error;
  } finally {
    process.off('SIGINT', onInterrupt);
    process.off('SIGTERM', onTerminate);
  }
}

/**
 * For work whose state is all in a database (a search's journal, a study): the first SIGINT or
 * SIGTERM ends the command at once (exit 130 or 143) with one line saying how to continue;
 * everything recorded stays recorded, the jobs under way are taken up again later. Returns the
 * function that removes the handlers.
 */
export function exitOnInterrupt(howToContinue: string): () => void {
  const handler = (signal: 'SIGINT' | 'SIGTERM') => {
    process.stderr.write(`\nfmnist: error: interrupted by ${signal}; every result recorded so far is kept, ${howToContinue}\n`);
    process.exit(signal === 'SIGINT' ? 130 : 143);
  };
  const onInterrupt = () => handler('SIGINT');
  const onTerminate = () => handler('SIGTERM');
  process.on('SIGINT', onInterrupt);
  process.on('SIGTERM', onTerminate);
  return () => {
    process.off('SIGINT', onInterrupt);
    process.off('SIGTERM', onTerminate);
  };
}
