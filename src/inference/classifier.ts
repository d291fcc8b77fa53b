/**
 * Trained models as image classifiers: what `fmnist predict`, `fmnist serve` and the exports'
 * checks run. A classifier takes images in Fashion-MNIST's form (28x28 bytes, a light garment
 * on a dark background) and gives each one's class probabilities, whatever the model's input
 * transform (pixels, or the features of a CNN) and whichever runtime computes it.
 */
import { existsSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { pixelExamples, type Examples } from '../data/dataset.ts';
import { NUM_CLASSES } from '../data/idx.ts';
import type { LabelledImages } from '../data/load.ts';
import { UserError } from '../errors.ts';
import { evaluate, testFlipShape } from '../evaluation/predict.ts';
import type { Kernels } from '../kernels/index.ts';
import { Workspace } from '../kernels/workspace.ts';
import { SoftmaxCrossEntropy } from '../layers/softmax-cross-entropy.ts';
import { cnnFeatureInput } from '../models/features.ts';
import { foldBatchNorm } from '../models/fold.ts';
import { loadModel, type ModelDescription } from '../models/model-file.ts';
import { PipelineFolder, RunFolder, type ModelKind } from '../runs/run-folder.ts';

export interface ImageClassifier {
  /** The name it answers to: the model kind in a pipeline (mlp, cnn, cnn-features-mlp), else the folder's name. */
  readonly name: string;
  readonly kind: ModelKind;
  readonly classNames: readonly string[];
  /** What computes it, for messages: e.g. `native (AVX-512, 2 threads)` or `onnxruntime`. */
  readonly runtime: string;
  /** Softmax probabilities [count, classes] of `count` images, `pixels` [count, 28, 28] bytes. */
  classify(pixels: Uint8Array, count: number): Promise<Float32Array>;
  /** Gives back what the model holds (its tensors, a runtime's session); it must not classify afterwards. */
  close?(): Promise<void>;
}

/**
 * How a saved model's input is made from labelled images, as its input transform says: the
 * pixels scaled, or the features of the CNN it names (loaded once; averaged with the mirror
 * image's where the transform says so), standardised. `fold`
 * folds the CNN's batch normalisation into its layers (inference; see foldBatchNorm).
 */
export async function modelInput(kernels: Kernels, dir: string, description: ModelDescription, { fold = false } = {}): Promise<ModelInput> {
  const input = description.input;
  if (input.type === 'pixels') return { examples: async (images) => pixelExamples(images), dispose: () => {} };
  const saved = loadModel(resolve(dir, input.extractor), kernels).model;
  const extractor = fold ? await foldBatchNorm(saved, kernels) : { model: saved, layerIndex: (index: number) => index };
  if (extractor.model !== saved) saved.dispose();
  if (fold) extractor.model.prepareInference();
  const workspace = new Workspace(kernels);
  return {
    examples: cnnFeatureInput(kernels, extractor.model, extractor.layerIndex(input.featureLayer), input, workspace),
    dispose() {
      workspace.dispose();
      extractor.model.dispose();
    },
  };
}

/** A model's input made from images (see modelInput), and the release of what it holds (a CNN that makes features). */
export interface ModelInput {
  examples: (images: LabelledImages) => Promise<Examples>;
  dispose(): void;
}

/** The model saved in `dir` (model.json and model.safetensors), run by our engine on `kernels`. */
export async function ourClassifier(dir: string, kernels: Kernels, name = basename(resolve(dir))): Promise<ImageClassifier> {
  const { model: saved, description } = new RunFolder(dir).loadModel(kernels);
  const model = (await foldBatchNorm(saved, kernels)).model;
  if (model !== saved) saved.dispose();
  // Only classifies from here: the filters transformed once, the buffers kept from call to call.
  model.prepareInference();
  const workspace = new Workspace(kernels);
  const input = await modelInput(kernels, dir, description, { fold: true });
  const loss = new SoftmaxCrossEntropy(kernels, NUM_CLASSES);
  return {
    name,
    kind: description.kind as ModelKind,
    classNames: description.classNames,
    runtime: kernels.description,
    async classify(pixels, count) {
      const examples = await input.examples({ count, pixels, labels: new Uint8Array(count) });
      return (await evaluate(kernels, model, loss, examples, undefined, testFlipShape(description.testTimeFlip), workspace)).probabilities;
    },
    async close() {
      model.dispose();
      workspace.dispose();
      input.dispose();
      loss.dispose();
    },
  };
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

/** A class and its probability. */
export interface ClassScore {
  class: string;
  probability: number;
}

/** The `k` most probable classes of row `row` of [count, classes] probabilities, most probable first. */
export function topClasses(probabilities: Float32Array, row: number, classNames: readonly string[], k: number): ClassScore[] {
  const classes = classNames.length;
  const order = classNames.map((_, c) => c).sort((a, b) => probabilities[row * classes + b] - probabilities[row * classes + a] || a - b);
  return order.slice(0, Math.max(1, Math.min(k, classes))).map((c) => ({ class: classNames[c], probability: probabilities[row * classes + c] }));
}
