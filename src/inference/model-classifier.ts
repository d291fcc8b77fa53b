/**
 * A saved model as an image classifier on our engine, from the model itself (however its files
 * were read): the one classifier `fmnist predict`, `fmnist serve` and the web app run.
 * classifier.ts loads the models from a folder; the web app from the files it fetched, made or
 * was given. No Node API here.
 */
import { pixelExamples, type Examples } from '../data/dataset.ts';
import { NUM_CLASSES } from '../data/idx.ts';
import type { LabelledImages } from '../data/verify.ts';
import { evaluate, testFlipShape } from '../evaluation/predict.ts';
import type { Kernels } from '../kernels/types.ts';
import { Workspace } from '../kernels/workspace.ts';
import { SoftmaxCrossEntropy } from '../layers/softmax-cross-entropy.ts';
import { cnnFeatureInput } from '../models/features.ts';
import { foldBatchNorm } from '../models/fold.ts';
import type { ModelDescription } from '../models/model-format.ts';
import type { Sequential } from '../models/sequential.ts';
import type { ModelKind } from '../runs/run-files.ts';
import { layerOutputs, type LayerOutput } from './inside.ts';

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

/** A layer's output for one image, and which network of the model it belongs to. */
export interface InsideLayer extends LayerOutput {
  /** `extractor`: the CNN an MLP on features takes its input from; `model`: the model's own layers. */
  network: 'extractor' | 'model';
}

/** A classifier run by our engine, which can also show what each of its layers makes of an image. */
export interface EngineClassifier extends ImageClassifier {
  /**
   * Every layer's output for one image ([28, 28] bytes) as the classifier computes it (batch
   * normalisation folded): for an MLP on features, the CNN's layers up to its features (of the
   * image itself), then the MLP's on the standardised features it is given.
   */
  inside(pixels: Uint8Array): Promise<InsideLayer[]>;
  close(): Promise<void>;
}

/** A model's input made from images (see modelInput), and the release of what it holds (a CNN that makes features). */
export interface ModelInput {
  examples: (images: LabelledImages) => Promise<Examples>;
  dispose(): void;
}

/**
 * How a saved model's input is made from labelled images, as its input transform says: the
 * pixels scaled, or the features of `extractor` (the CNN the transform names; averaged with the
 * mirror image's where the transform says so), standardised. `fold` folds the CNN's batch
 * normalisation into its layers (inference; see foldBatchNorm). The input owns `extractor`.
 */
export async function inputFromExtractor(kernels: Kernels, description: ModelDescription, extractor: Sequential | null, { fold = false } = {}): Promise<ModelInput & { extractor: { model: Sequential; featureLayer: number } | null }> {
  const input = description.input;
  if (input.type === 'pixels') return { examples: async (images) => pixelExamples(images), dispose: () => extractor?.dispose(), extractor: null };
  if (extractor === null) throw new Error(`a ${description.kind} model takes the features of a CNN; give its extractor`);
  const folded = fold ? await foldBatchNorm(extractor, kernels) : { model: extractor, layerIndex: (index: number) => index };
  if (folded.model !== extractor) extractor.dispose();
  if (fold) folded.model.prepareInference();
  const featureLayer = folded.layerIndex(input.featureLayer);
  const workspace = new Workspace(kernels);
  return {
    examples: cnnFeatureInput(kernels, folded.model, featureLayer, input, workspace),
    dispose() {
      workspace.dispose();
      folded.model.dispose();
    },
    extractor: { model: folded.model, featureLayer },
  };
}

/**
 * The classifier of a saved model (its description and weights, `saved`, and for an MLP on
 * features the CNN it names, `extractor`), run on `kernels`: batch normalisation folded into
 * the layers before it, the input made as the model's transform says, each image evaluated with
 * its mirror image where the model flips at test time. The classifier owns both models.
 */
export async function engineClassifier(kernels: Kernels, name: string, saved: { model: Sequential; description: ModelDescription }, extractor: Sequential | null = null): Promise<EngineClassifier> {
  const { description } = saved;
  const model = (await foldBatchNorm(saved.model, kernels)).model;
  if (model !== saved.model) saved.model.dispose();
  // Only classifies from here: the filters transformed once, the buffers kept from call to call.
  model.prepareInference();
  const workspace = new Workspace(kernels);
  const input = await inputFromExtractor(kernels, description, extractor, { fold: true });
  const loss = new SoftmaxCrossEntropy(kernels, NUM_CLASSES);
  const images = (pixels: Uint8Array, count: number): LabelledImages => ({ count, pixels, labels: new Uint8Array(count) });
  return {
    name,
    kind: description.kind as ModelKind,
    classNames: description.classNames,
    runtime: kernels.description,
    async classify(pixels, count) {
      const examples = await input.examples(images(pixels, count));
      return (await evaluate(kernels, model, loss, examples, undefined, testFlipShape(description.testTimeFlip), workspace)).probabilities;
    },
    async inside(pixels) {
      const one = images(pixels, 1);
      const layers: InsideLayer[] = [];
      if (input.extractor) {
        const { model: cnn, featureLayer } = input.extractor;
        for (const layer of await layerOutputs(kernels, cnn, pixelExamples(one), featureLayer)) layers.push({ ...layer, network: 'extractor' });
      }
      for (const layer of await layerOutputs(kernels, model, await input.examples(one))) layers.push({ ...layer, network: 'model' });
      return layers;
    },
    async close() {
      model.dispose();
      workspace.dispose();
      input.dispose();
      loss.dispose();
    },
  };
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
