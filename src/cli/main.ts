#!/usr/bin/env node
/** The `fmnist` command line: thin commands over the library (see src/index.ts). */
import { Command, CommanderError } from 'commander';
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { PartialFailure, UserError } from '../errors.ts';
import { VERSION } from '../version.ts';
import { addExportCommand } from './commands/export.ts';
import { addAppCommand } from './commands/app.ts';
import { addInspectCommands } from './commands/inspect.ts';
import { addPipelineCommand } from './commands/pipeline.ts';
import { addPredictCommand } from './commands/predict.ts';
import { addSearchCommand } from './commands/search.ts';
import { addServeCommand } from './commands/serve.ts';
import { addTrainCommands } from './commands/train.ts';

export function buildProgram(): Command {
  const program = new Command('fmnist')
    .description('Fashion-MNIST classification with neural networks written from scratch in TypeScript.')
    .version(VERSION)
    .exitOverride()
    // A subcommand's flags are its own: `fmnist search worker --workers 2` is the worker's --workers, not the search's.
    .enablePositionalOptions();
  addTrainCommands(program);
  addPipelineCommand(program);
  addSearchCommand(program);
  addInspectCommands(program);
  addPredictCommand(program);
  addServeCommand(program);
  addExportCommand(program);
  addAppCommand(program);
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
