#!/usr/bin/env node
/** The `fmnist` command line: thin commands over the library (see src/index.ts). */
import { Command, CommanderError } from 'commander';
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { PartialFailure, UserError } from '../errors.ts';
import { VERSION } from '../version.ts';

/**
 * Each command's module, imported only when that command runs: their dependencies (a server's,
 * the databases', the report's charts, ONNX Runtime) took most of a second or more to load,
 * and `fmnist predict` on one image should answer in a fraction of that.
 */
const COMMAND_MODULES: { names: string[]; load: () => Promise<(program: Command) => void> }[] = [
  { names: ['train'], load: async () => (await import('./commands/train.ts')).addTrainCommands },
  { names: ['pipeline'], load: async () => (await import('./commands/pipeline.ts')).addPipelineCommand },
  { names: ['search'], load: async () => (await import('./commands/search.ts')).addSearchCommand },
  { names: ['report', 'evaluate', 'data'], load: async () => (await import('./commands/inspect.ts')).addInspectCommands },
  { names: ['predict'], load: async () => (await import('./commands/predict.ts')).addPredictCommand },
  { names: ['serve'], load: async () => (await import('./commands/serve.ts')).addServeCommand },
  { names: ['export'], load: async () => (await import('./commands/export.ts')).addExportCommand },
  { names: ['app'], load: async () => (await import('./commands/app.ts')).addAppCommand },
];

/** The program with every command, or with only the module of `command` where it names one. */
export async function buildProgram(command?: string): Promise<Command> {
  const program = new Command('fmnist')
    .description('Fashion-MNIST classification with neural networks written from scratch in TypeScript.')
    .version(VERSION)
    .exitOverride()
    // A subcommand's flags are its own: `fmnist search worker --workers 2` is the worker's --workers, not the search's.
    .enablePositionalOptions();
  const named = COMMAND_MODULES.filter((module) => command !== undefined && module.names.includes(command));
  for (const module of named.length > 0 ? named : COMMAND_MODULES) (await module.load())(program);
  return program;
}

/** Runs the CLI; returns the process exit code. User mistakes print one line, never a stack trace. */
export async function main(argv: string[]): Promise<number> {
  try {
    await (await buildProgram(argv[0])).parseAsync(argv, { from: 'user' });
    return 0;
  } catch (error) {
    if (error instanceof CommanderError) {
      // Commander has already printed its one-line message (or the help text).
      return error.exitCode === 0 ? 0 : 2;
    }
    // Each failed input has had its own line already.
    if (error instanceof PartialFailure) return error.exitCode;
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
