import { Option, type Command } from 'commander';
import { join } from 'node:path';
import { loadTestSet } from '../../data/load.ts';
import { locateData } from '../../data/locate.ts';
import { UserError } from '../../errors.ts';
import { exportOnnx, ONNX_OPSET } from '../../export/onnx.ts';
import { checkOnnxExport } from '../../export/onnx-runtime.ts';
import { modelFolders } from '../../inference/classifier.ts';
import { writeFileAtomic } from '../../io/atomic.ts';
import { loadKernels } from '../../kernels/index.ts';
import { addBackendOptions, addDataOptions, displayPath, locateOptions, log, percent, type BackendFlags, type DataFlags } from '../shared.ts';

type ExportFlags = DataFlags & BackendFlags & { model: string; format: 'onnx'; out?: string; check: boolean };

/** `fmnist export`: a saved model (or a pipeline's three) as ONNX, optionally checked by ONNX Runtime on the test set. */
export function addExportCommand(program: Command): void {
  addDataOptions(
    addBackendOptions(
      program
        .command('export')
        .description(
          'write a saved model as an ONNX graph from images [N, 1, 28, 28] in [0, 1] to probabilities [N, 10] (a pipeline folder: each of its three models)',
        )
        .requiredOption('--model <dir>', 'a model folder (holding model.json and model.safetensors) or a pipeline folder')
        .addOption(new Option('--format <format>', 'file format').choices(['onnx']).default('onnx'))
        .option('--out <file>', 'file to write (default: model.onnx in the model folder; not with a pipeline folder, whose models each get theirs)')
        .option('--check', 'then run each exported model in ONNX Runtime on the test set beside our engine (--backend, --threads) and compare', false),
    ),
  ).action(async (flags: ExportFlags) => {
    const folders = modelFolders(flags.model);
    if (flags.out && folders.length > 1) {
      throw new UserError(`${flags.model} is a pipeline with ${folders.length} models; leave out --out and each gets model.onnx in its own folder.`);
    }
    for (const folder of folders) {
      const exported = exportOnnx(folder.dir);
      const file = flags.out ?? join(folder.dir, 'model.onnx');
      writeFileAtomic(file, exported.bytes);
      const size = (exported.bytes.length / 1e6).toFixed(2);
      console.log(`${folder.name}: ${displayPath(file)} (${size} MB, opset ${ONNX_OPSET}, ${exported.ops.length} nodes: ${[...new Set(exported.ops)].join(', ')})`);
    }
    if (!flags.check) return;
    const kernels = await loadKernels(flags.backend, { threads: flags.threads, onFallback: log });
    const location = await locateData(locateOptions(flags));
    const images = loadTestSet(location.dir, { allowModified: flags.allowModifiedData }).data;
    for (const { name, comparison, recordedAccuracy } of await checkOnnxExport(flags.model, kernels, images, { threads: flags.threads })) {
      const [ours, theirs] = comparison.accuracy;
      const recorded = recordedAccuracy === null ? '' : `, recorded at training ${percent(recordedAccuracy)}`;
      console.log(
        `${name}: onnxruntime test accuracy ${percent(theirs)} (ours ${percent(ours)}${recorded}); same class on ${comparison.sameClass} of ${comparison.images} images; ` +
          `largest probability difference ${comparison.maxDifference.toExponential(1)}`,
      );
    }
  });
}
