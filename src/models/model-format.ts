/**
 * model.json and model.safetensors as data, without file access: what a saved model's
 * description holds, and a model rebuilt from the two files' contents. model-file.ts reads and
 * writes them in a folder; the web app fetches them from `fmnist app`.
 */
import { UserError } from '../errors.ts';
import type { Kernels } from '../kernels/index.ts';
import { decodeSafetensors, encodeSafetensors } from '../io/safetensors.ts';
import { Sequential, type Architecture } from './sequential.ts';

export const MODEL_JSON = 'model.json';
export const MODEL_WEIGHTS = 'model.safetensors';

/**
 * How raw inputs become the model's input. `pixels`: bytes 0..255 times `scale`, in the image's
 * layout. `cnn-features`: the images go through the CNN saved in `extractor` (a folder, relative
 * to this model's), its layer `featureLayer`'s output is taken (with `flipAverage`, the mean of
 * the image's and its mirror image's) and standardised per feature with the training features'
 * `mean` and `std`.
 */
export type InputTransform =
  | { type: 'pixels'; scale: number }
  | { type: 'cnn-features'; extractor: string; featureLayer: number; flipAverage?: boolean; mean: number[]; std: number[] };

/** model.json: everything needed to use the weights in model.safetensors again. */
export interface ModelDescription {
  format: 'fmnist-model';
  version: 1;
  /** Which model of the project this is, e.g. `mlp`. */
  kind: string;
  architecture: Architecture;
  input: InputTransform;
  classNames: string[];
  /** Name and shape of each tensor in the weights file, in order. */
  parameters: { name: string; shape: number[] }[];
  weights: typeof MODEL_WEIGHTS;
  /** Index of the layer whose output are the model's features (the CNN's feature layer). */
  featureLayer?: number;
  /** The model is used on each image and its mirror image, averaging the probabilities (test-time flipping). */
  testTimeFlip?: boolean;
}

/** What a model's description says beside its architecture and tensors. */
export interface ModelDetails {
  kind: string;
  input: InputTransform;
  classNames: readonly string[];
  featureLayer?: number;
  testTimeFlip?: boolean;
}

/** The description of `model` to save as model.json. */
export function describeModel(model: Sequential, details: ModelDetails): ModelDescription {
  return {
    format: 'fmnist-model',
    version: 1,
    kind: details.kind,
    architecture: model.architecture,
    input: details.input,
    classNames: [...details.classNames],
    parameters: model.parameters.map((p) => ({ name: p.name, shape: [...p.shape] })),
    weights: MODEL_WEIGHTS,
    ...(details.featureLayer === undefined ? {} : { featureLayer: details.featureLayer }),
    ...(details.testTimeFlip ? { testTimeFlip: true } : {}),
  };
}

/** The two files of a saved model: model.json's description and model.safetensors' bytes (the weights read from where the kernels keep them). */
export async function encodeModel(model: Sequential, details: ModelDetails): Promise<{ description: ModelDescription; weights: Uint8Array }> {
  const values = await model.readValues();
  const tensors = model.parameters.map((p) => ({ name: p.name, shape: p.shape, data: values.subarray(p.offset, p.offset + p.value.length) }));
  return { description: describeModel(model, details), weights: encodeSafetensors(tensors, { format: 'fmnist-model', kind: details.kind }) };
}

/** Parses and checks model.json's text; `path` names the file in messages. */
export function parseModelDescription(text: string, path: string): ModelDescription {
  let description: ModelDescription;
  try {
    description = JSON.parse(text) as ModelDescription;
  } catch (error) {
    throw new UserError(`${path} is not valid JSON (${error instanceof Error ? error.message : String(error)}); the model folder is damaged.`);
  }
  if (description?.format !== 'fmnist-model' || description.version !== 1) {
    throw new UserError(`${path} is not a model description this version of fmnist can read.`);
  }
  return description;
}

/**
 * The model `description` describes, with the weights of a safetensors file's content.
 * `where` names the model's folder and `weightsPath` the weights file in messages.
 */
export function modelFromWeights(description: ModelDescription, weights: Uint8Array, kernels: Kernels, where: { dir: string; weightsPath: string }): Sequential {
  let model: Sequential;
  let tensors;
  try {
    model = new Sequential(kernels, description.architecture);
    tensors = decodeSafetensors(weights, where.weightsPath).tensors;
  } catch (error) {
    throw new UserError(`Cannot load the model in ${where.dir}: ${error instanceof Error ? error.message : String(error)}.`);
  }
  for (const parameter of model.parameters) {
    const tensor = tensors.get(parameter.name);
    if (!tensor || tensor.data.length !== parameter.value.length || !(tensor.data instanceof Float32Array)) {
      model.dispose();
      throw new UserError(`${where.weightsPath} lacks tensor ${parameter.name} of shape [${parameter.shape.join(', ')}] (F32); the model folder is damaged.`);
    }
  }
  // Each tensor straight from the file's bytes to where the kernels keep it.
  for (const parameter of model.parameters) kernels.write(model.values, tensors.get(parameter.name)!.data as Float32Array, parameter.offset);
  return model;
}
