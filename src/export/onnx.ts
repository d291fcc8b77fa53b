/**
 * `fmnist export`'s ONNX: the model saved in a folder (any kind) as one graph, built by
 * onnx-graph.ts (see there for the graph and the layouts), with the run's config.json in its
 * metadata.
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { UserError } from '../errors.ts';
import { jsKernels } from '../kernels/index.ts';
import { RunFolder } from '../runs/run-folder.ts';
import { VERSION } from '../version.ts';
import { onnxFromModel, type ExportedModel, type OnnxModel } from './onnx-graph.ts';

export { convWeightToOihw, denseRowsToChannelsFirst, ONNX_INPUT, ONNX_OPSET, ONNX_OUTPUT, onnxFromModel, type ExportedModel, type OnnxModel } from './onnx-graph.ts';

/** The model saved in `dir` with its weights, on the plain TypeScript kernels, and its run's config.json where there is one (a model copied without it has none). */
function loadForExport(dir: string): ExportedModel {
  const folder = new RunFolder(dir);
  return { ...folder.loadModel(jsKernels), config: folder.state() === 'new' ? null : JSON.stringify(folder.readConfig()) };
}

/**
 * The model saved in `dir` (model.json and model.safetensors, any kind) as an ONNX model: one
 * graph from `images` to `probabilities`, the class names, producer and training configuration
 * in its metadata.
 */
export function exportOnnx(dir: string): OnnxModel {
  if (!existsSync(dir)) throw new UserError(`${dir} does not exist; pass the folder of a trained model (fmnist train, a pipeline's mlp/, cnn/ or cnn-features-mlp/).`);
  const saved = loadForExport(dir);
  const input = saved.description.input;
  const extractor = input.type === 'cnn-features' ? loadForExport(resolve(dir, input.extractor)) : null;
  return onnxFromModel(saved, extractor, VERSION);
}
