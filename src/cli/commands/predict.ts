import type { Command } from 'commander';
import { PartialFailure } from '../../errors.ts';
import { loadClassifiers } from '../../inference/classifier.ts';
import { predictFiles, type FilePrediction } from '../../inference/predict.ts';
import { loadKernels } from '../../kernels/index.ts';
import { integerBetween } from '../../runs/options.ts';
import { parser } from '../parse.ts';
import { addBackendOptions, log, type BackendFlags } from '../shared.ts';

interface PredictFlags extends BackendFlags {
  model: string;
  top: number;
  json: boolean;
  /** False with --no-preprocess. */
  preprocess: boolean;
}

/** `fmnist predict`: classify people's images with a trained model or a pipeline's three. */
export function addPredictCommand(program: Command): void {
  addBackendOptions(
    program
      .command('predict')
      .description('classify image files (PNG, JPEG of any size; .npy of uint8 [N, 28, 28]) with a trained model, or a pipeline\'s three side by side')
      .argument('<files...>', 'PNG or JPEG images (colour or grayscale, any size), or .npy arrays of 28x28 uint8 images')
      .requiredOption('--model <dir>', 'a model folder (fmnist train, a search trial, a pipeline\'s mlp/, cnn/, cnn-features-mlp/) or a pipeline folder (all three answer)')
      .option('--top <k>', 'classes listed per image, most probable first', parser(integerBetween(1, 10)), 3)
      .option('--json', 'print one JSON object per file instead of a table', false)
      .option('--no-preprocess', 'take 28x28 images as they are (a light garment on black), without inverting, cropping or fitting'),
  ).action(async (files: string[], flags: PredictFlags) => {
    const kernels = await loadKernels(flags.backend, { threads: flags.threads, onFallback: log });
    const classifiers = await loadClassifiers(flags.model, kernels);
    const results = await predictFiles(classifiers, files, { top: flags.top, preprocess: flags.preprocess });
    if (flags.json) for (const result of results) console.log(JSON.stringify(result));
    else console.log(predictionTable(results));
    const failed = results.filter((result) => 'error' in result);
    for (const result of failed) if ('error' in result) log(`fmnist: error: ${result.error}`);
    if (failed.length > 0) throw new PartialFailure(failed.length, results.length);
  });
}

/**
 * One row per image and model: the file (with the image's index for a .npy), the model,
 * whether the image was inverted, then the top classes with their probabilities.
 */
function predictionTable(results: readonly FilePrediction[]): string {
  const rows: string[][] = [];
  for (const result of results) {
    if (!('images' in result)) continue;
    const many = result.images.length > 1;
    for (const image of result.images) {
      image.models.forEach((model, m) => {
        const first = m === 0;
        rows.push([
          first ? (many ? `${result.file}[${image.index}]` : result.file) : '',
          model.model,
          first ? (image.inverted ? 'yes' : 'no') : '',
          ...model.top.map((score) => `${score.class} ${(score.probability * 100).toFixed(1)}%`),
        ]);
      });
    }
  }
  if (rows.length === 0) return 'no image could be classified';
  const columns = Math.max(...rows.map((row) => row.length));
  const header = ['file', 'model', 'inverted', ...Array.from({ length: columns - 3 }, (_, i) => `#${i + 1}`)];
  const widths = header.map((title, c) => Math.max(title.length, ...rows.map((row) => (row[c] ?? '').length)));
  const format = (row: string[]) => row.map((cell, c) => (cell ?? '').padEnd(widths[c])).join('  ').trimEnd();
  return [format(header), ...rows.map(format)].join('\n');
}
