import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../errors.ts';
import type { Kernels } from '../kernels/index.ts';
import type { Sequential } from './sequential.ts';
import { makeFolder, writeFileAtomic, writeJsonAtomic } from '../io/atomic.ts';
import { encodeModel, MODEL_JSON, MODEL_WEIGHTS, modelFromWeights, parseModelDescription, type ModelDescription, type ModelDetails } from './model-format.ts';

export { MODEL_JSON, MODEL_WEIGHTS, type InputTransform, type ModelDescription } from './model-format.ts';

/** Writes model.json and model.safetensors into `dir` (each atomically). */
export async function saveModel(dir: string, model: Sequential, details: ModelDetails): Promise<void> {
  makeFolder(dir);
  const { description, weights } = await encodeModel(model, details);
  writeFileAtomic(join(dir, MODEL_WEIGHTS), weights);
  writeJsonAtomic(join(dir, MODEL_JSON), description);
}

function missingModel(dir: string): UserError {
  return new UserError(`${dir} holds no saved model (${MODEL_JSON} and ${MODEL_WEIGHTS}); pass the folder a training run wrote.`);
}

/** Reads and checks the model.json saved by {@link saveModel}, without its weights. */
export function readModelDescription(dir: string): ModelDescription {
  const jsonPath = join(dir, MODEL_JSON);
  if (!existsSync(jsonPath)) throw missingModel(dir);
  return parseModelDescription(readFileSync(jsonPath, 'utf8'), jsonPath);
}

/** Rebuilds a model saved by {@link saveModel}. */
export function loadModel(dir: string, kernels: Kernels): { model: Sequential; description: ModelDescription } {
  const weightsPath = join(dir, MODEL_WEIGHTS);
  if (!existsSync(join(dir, MODEL_JSON)) || !existsSync(weightsPath)) throw missingModel(dir);
  const description = readModelDescription(dir);
  return { model: modelFromWeights(description, readFileSync(weightsPath), kernels, { dir, weightsPath }), description };
}
