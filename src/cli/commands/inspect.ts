import type { Command } from 'commander';
import { join } from 'node:path';
import { CLASS_NAMES } from '../../data/manifest.ts';
import { buildReport } from '../../reports/report.ts';
import { summarizeData } from '../../runs/data-summary.ts';
import { evaluateSavedModel } from '../../runs/evaluate.ts';
import { addBackendOptions, addDataOptions, displayPath, locateOptions, log, printTestMetrics, type BackendFlags, type DataFlags } from '../shared.ts';

/** `fmnist evaluate`, `fmnist report` and `fmnist data`: looking at models, runs and the data. */
export function addInspectCommands(program: Command): void {
  addDataOptions(
    addBackendOptions(
      program
        .command('report')
        .description('build report.html (curves, confusion matrices, classification reports, sample predictions) from a run folder')
        .argument('<dir>', 'run folder of fmnist pipeline, train or search'),
    ),
  ).action(async (dir: string, flags: DataFlags & BackendFlags) => {
    const report = await buildReport(dir, { data: locateOptions(flags), allowModifiedData: flags.allowModifiedData, backend: flags.backend, threads: flags.threads, log });
    console.log(`report: ${displayPath(report.path)} (${report.charts.length} chart files in ${displayPath(join(dir, 'charts'))})`);
  });

  addDataOptions(
    addBackendOptions(
      program
        .command('evaluate')
        .description('evaluate a saved model (any kind) on the test set and compare with the figures recorded when it was trained')
        .requiredOption('--model <dir>', 'folder holding model.json and model.safetensors'),
    ),
  ).action(async (flags: DataFlags & BackendFlags & { model: string }) => {
    const result = await evaluateSavedModel(flags.model, { data: locateOptions(flags), allowModifiedData: flags.allowModifiedData, backend: flags.backend, threads: flags.threads });
    console.log(`model: ${result.description.kind} from ${flags.model}`);
    printTestMetrics(result.test);
    if (result.recordedAccuracy !== null) {
      const same = result.recordedAccuracy === result.test.accuracy;
      console.log(`${same ? 'matches' : 'differs from'} the test accuracy recorded in metrics.json (${(result.recordedAccuracy * 100).toFixed(2)}%)`);
    }
  });

  addDataOptions(program.command('data').description('show where the data was found, whether each file is the official one, and the counts per class')).action(
    async (flags: DataFlags) => {
      const summary = await summarizeData({ data: locateOptions(flags), allowModifiedData: flags.allowModifiedData });
      console.log(`data folder: ${summary.location.dir} (found via ${summary.location.origin})\n`);
      for (const check of summary.checks) console.log(`${check.status === 'verified' ? 'ok      ' : 'MODIFIED'} ${check.file}  sha256 ${check.sha256}`);
      const { train, validation, test } = summary.counts;
      const sum = (counts: number[]) => counts.reduce((a, b) => a + b, 0);
      const row = (label: string, values: number[]) => `${label.padEnd(16)}${values.map((v) => String(v).padStart(8)).join('')}`;
      console.log(`\n${'class'.padEnd(16)}${'train'.padStart(8)}${'val'.padStart(8)}${'test'.padStart(8)}`);
      CLASS_NAMES.forEach((name, i) => console.log(row(`${i} ${name}`, [train[i], validation[i], test[i]])));
      console.log(row('total', [sum(train), sum(validation), sum(test)]));
    },
  );
}
