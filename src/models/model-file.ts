import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../errors.ts';
import type { Kernels } from '../kernels/index.ts';
import { Sequential, type Architecture } from './sequential.ts';
import { makeFolder, writeFileAtomic, writeJsonAtomic } from '../io/atomic.ts';
import { decodeSafetensors, encodeSafetensors } from '../io/safetensors.ts';

export const MODEL_JSON = 'model.json';
export const MODEL_WEIGHTS = 'model.safetensors';

/**
 * How raw inputs become the model's input. `pixels`: bytes 0..255 times `scale`, in the image's
 * layout. `cnn-features`: the images go through the CNN saved in `extractor` (a folder, relative
 * to this model's), its layer `featureLayer`'s output is taken and standardised per feature with
 * the training features' `mean` and `std`.
 */
export type InputTransform =
  | { type: 'pixels'; scale: number }
  | { type: 'cnn-features'; extractor: string; featureLayer: number; mean: number[]; std: number[] };

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

/** Writes model.json and model.safetensors into `dir` (each atomically). */
export function saveModel(
  dir: string,
  model: Sequential,
  details: { kind: string; input: InputTransform; classNames: readonly string[]; featureLayer?: number; testTimeFlip?: boolean },
): void {
  makeFolder(dir);
  const description: ModelDescription = {
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
  const tensors = model.parameters.map((p) => ({ name: p.name, shape: p.shape, data: p.value }));
  writeFileAtomic(join(dir, MODEL_WEIGHTS), encodeSafetensors(tensors, { format: 'fmnist-model', kind: details.kind }));
  writeJsonAtomic(join(dir, MODEL_JSON), description);
}

function missingModel(dir: string): UserError {
  return new UserError(`${dir} holds no saved model (${MODEL_JSON} and ${MODEL_WEIGHTS}); pass the folder a training run wrote.`);
}

/** Reads and checks the model.json saved by {@link saveModel}, without its weights. */
export function readModelDescription(dir: string): ModelDescription {
  const jsonPath = join(dir, MODEL_JSON);
  if (!existsSync(jsonPath)) throw missingModel(dir);
  let description: ModelDescription;
  try {
    description = JSON.parse(readFileSync(jsonPath, 'utf8')) as ModelDescription;
  } catch (error) {
    throw new UserError(`${jsonPath} is not valid JSON (${error instanceof Error ? error.message : String(error)}); the model folder is damaged.`);
  }
  if (description.format !== 'fmnist-model' || description.version !== 1) {
    throw new UserError(`${jsonPath} is not a model description this version of fmnist can read.`);
  }
  return description;
}

/** Rebuilds a model saved by {@link saveModel}. */
export function loadModel(dir: string, kernels: Kernels): { model: Sequential; description: ModelDescription } {
  const weightsPath = join(dir, MODEL_WEIGHTS);
  if (!existsSync(join(dir, MODEL_JSON)) || !existsSync(weightsPath)) throw missingModel(dir);
  const description = readModelDescription(dir);
  let model: Sequential;
  let tensors;
  try {
    model = new Sequential(kernels, description.architecture);
    tensors = decodeSafetensors(readFileSync(weightsPath), weightsPath).tensors;
  } catch (error) {
    throw new UserError(`Cannot load the model in ${dir}: ${error instanceof Error ? error.message : String(error)}.`);
  }
  for (const parameter of model.parameters) {
    const tensor = tensors.get(parameter.name);
    if (!tensor || tensor.data.length !== parameter.value.length) {
      throw new UserError(`${weightsPath} lacks tensor ${parameter.name} of shape [${parameter.shape.join(', ')}]; the model folder is damaged.`);
    }
    parameter.value.set(tensor.data);
  }
  return { model, description };
}
