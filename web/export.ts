/**
 * A page model as files to download: its run's files as the CLI writes them, and ONNX made in
 * the page by the project's exporter (src/export/onnx-graph.ts, as `fmnist export` runs it),
 * with the `fmnist predict` command and the few lines of ONNX Runtime Web that use them.
 */
import { onnxFromModel, ONNX_INPUT, ONNX_OUTPUT, type ExportedModel, type OnnxModel } from '../src/export/onnx-graph.ts';
import { jsKernels } from '../src/kernels/js.ts';
import { modelFromWeights } from '../src/models/model-format.ts';
import { MODEL_RUN_FILES, RUN_FILES } from '../src/runs/run-files.ts';
import { modelFilesOf, type PageModel } from './engine.ts';
import type { RunFileMap } from './protocol.ts';
import { VERSION } from './version.ts';

/** A model's files rebuilt on the plain kernels (the exporter reads only the layers' shapes and values), with config.json's text where the run has one. */
function exported(files: RunFileMap, where: string): ExportedModel {
  const { description, weights } = modelFilesOf(files, where);
  const config = files.get(RUN_FILES.config);
  return {
    model: modelFromWeights(description, weights, jsKernels, { dir: where, weightsPath: `${where}${RUN_FILES.weights}` }),
    description,
    config: config === undefined ? null : new TextDecoder().decode(config),
  };
}

/** The model as one ONNX graph from images [N, 1, 28, 28] (bytes / 255) to probabilities [N, 10], as `fmnist export` writes it. */
export function onnxOf(model: PageModel): OnnxModel {
  const saved = exported(model.files, `${model.label}/`);
  const extractor = model.extractor === null ? null : exported(model.extractor, `${model.label}/extractor/`);
  try {
    return onnxFromModel(saved, extractor, VERSION);
  } finally {
    saved.model.dispose();
    extractor?.model.dispose();
  }
}

/** A name for files and folders from a model's label: `page MLP 2` -> `page-mlp-2`. */
export function slug(label: string): string {
  return label.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '') || 'model';
}

/** The run's files the model has, in the run folder's order (model.json and model.safetensors first). */
export function downloadableFiles(model: PageModel): [string, Uint8Array][] {
  return MODEL_RUN_FILES.flatMap((name) => {
    const bytes = model.files.get(name);
    return bytes === undefined ? [] : [[name, bytes] as [string, Uint8Array]];
  });
}

/** The command that classifies pictures with the model's files saved in `./<folder>/` (an MLP on features: the pipeline folder it came with). */
export function predictCommand(model: PageModel): string {
  return `fmnist predict --model ./${slug(model.label)} shirt.png`;
}

/** The few lines of ONNX Runtime Web that classify 28x28 images with the model's ONNX file. */
export function onnxRuntimeSnippet(model: PageModel): string {
  return [
    "import * as ort from 'onnxruntime-web';",
    '',
    `const session = await ort.InferenceSession.create('${slug(model.label)}.onnx');`,
    '// pixels: Float32Array of N x 784, each byte / 255, a light garment on a dark background',
    `const ${ONNX_INPUT} = new ort.Tensor('float32', pixels, [N, 1, 28, 28]);`,
    `const { ${ONNX_OUTPUT} } = await session.run({ ${ONNX_INPUT} });`,
    `// ${ONNX_OUTPUT}.data: N x 10, in the order of ${JSON.stringify(model.description.classNames)}`,
  ].join('\n');
}
