/**
 * Trained models as image classifiers: what `fmnist predict`, `fmnist serve` and the exports'
 * checks run. A classifier takes images in Fashion-MNIST's form (28x28 bytes, a light garment
 * on a dark background) and gives each one's class probabilities, whatever the model's input
 * transform (pixels, or the features of a CNN) and whichever runtime computes it. The
 * classifier itself is model-classifier.ts's, which the web app runs too; this file finds and
 * loads the models of a folder.
 */
import { existsSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { UserError } from '../errors.ts';
import type { Kernels } from '../kernels/index.ts';
import { loadModel, type ModelDescription } from '../models/model-file.ts';
import type { Sequential } from '../models/sequential.ts';
import { PipelineFolder, RunFolder } from '../runs/run-folder.ts';
import { engineClassifier, inputFromExtractor, type EngineClassifier, type ImageClassifier, type ModelInput } from './model-classifier.ts';

export { engineClassifier, topClasses, type ClassScore, type EngineClassifier, type ImageClassifier, type ModelInput } from './model-classifier.ts';

/**
 * How a saved model's input is made from labelled images, as its input transform says: the
 * pixels scaled, or the features of the CNN it names (loaded from its folder, relative to
 * `dir`), standardised. `fold` folds the CNN's batch normalisation into its layers.
 */
export async function modelInput(kernels: Kernels, dir: string, description: ModelDescription, { fold = false } = {}): Promise<ModelInput> {
  const input = await inputFromExtractor(kernels, description, extractorOf(kernels, dir, description), { fold });
  return { examples: input.examples, dispose: input.dispose };
}

/** The CNN a cnn-features model in `dir` takes its input from, loaded; null for a pixel model. */
function extractorOf(kernels: Kernels, dir: string, description: ModelDescription): Sequential | null {
  return description.input.type === 'cnn-features' ? loadModel(resolve(dir, description.input.extractor), kernels).model : null;
}

/** The model saved in `dir` (model.json and model.safetensors), run by our engine on `kernels` (see engineClassifier). */
export async function ourClassifier(dir: string, kernels: Kernels, name = basename(resolve(dir))): Promise<EngineClassifier> {
  const saved = new RunFolder(dir).loadModel(kernels);
  return engineClassifier(kernels, name, saved, extractorOf(kernels, dir, saved.description));
}

/** The model folders a folder holds: a pipeline's three (named by kind), or the one model of a training run. */
export function modelFolders(dir: string): { name: string; dir: string }[] {
  if (PipelineFolder.isPipeline(dir) || existsSync(join(dir, 'pipeline.json'))) {
    const pipeline = new PipelineFolder(dir);
    return [
      { name: 'mlp', dir: pipeline.mlp.dir },
      { name: 'cnn', dir: pipeline.cnn.dir },
      { name: 'cnn-features-mlp', dir: pipeline.featuresMlp.dir },
    ];
  }
  if (existsSync(join(dir, 'model.json'))) return [{ name: basename(resolve(dir)), dir }];
  throw new UserError(`${dir} holds no model (no model.json) and no pipeline (no pipeline.json); pass the folder of fmnist train, fmnist pipeline or a search trial.`);
}

/** Every model of a folder (see modelFolders) as our engine's classifiers. */
export async function loadClassifiers(dir: string, kernels: Kernels): Promise<ImageClassifier[]> {
  const classifiers: ImageClassifier[] = [];
  for (const folder of modelFolders(dir)) classifiers.push(await ourClassifier(folder.dir, kernels, folder.name));
  return classifiers;
}
