import { featureExamples, identityOrder, pixelExamples, type Examples } from '../data/dataset.ts';
import type { LabelledImages } from '../data/verify.ts';
import { testFlipShape } from '../evaluation/predict.ts';
import type { Kernels } from '../kernels/index.ts';
import { Workspace } from '../kernels/workspace.ts';
import { appendMirrors, averageMirrors, imagesPerPass } from '../evaluation/mirror.ts';
import { Rng } from '../random/rng.ts';
import type { InputTransform, ModelDescription } from './model-format.ts';
import type { Sequential } from './sequential.ts';

export interface FeatureOptions {
  /**
   * The examples' shape as images ([height, width, channels]): each example's features are the
   * mean of its own and its mirror image's (the features of a CNN trained with test-time
   * flipping, as its probabilities are). null (the default): the example's own.
   */
  flip?: readonly number[] | null;
  batchSize?: number;
  /** Buffers kept from call to call (a classifier's); without it they are released at the end. */
  workspace?: Workspace;
}

/**
 * Whether the features a pipeline saves of this CNN average each image's with its mirror
 * image's: where the CNN flips at test time, as it averages their probabilities.
 */
export function averagesMirrorFeatures(cnn: Pick<ModelDescription, 'testTimeFlip'>): boolean {
  return cnn.testTimeFlip === true;
}

/** The features a pipeline saves of these images: the CNN's feature layer, averaged as averagesMirrorFeatures says. */
export function pipelineFeatures(kernels: Kernels, model: Sequential, description: ModelDescription, images: LabelledImages): Promise<Float32Array> {
  if (description.featureLayer === undefined) throw new Error('the model has no feature layer');
  return extractFeatures(kernels, model, description.featureLayer, pixelExamples(images), { flip: testFlipShape(averagesMirrorFeatures(description)) });
}

/** The output of layer `featureLayer` for every example, in evaluation mode: [count, features], read once at the end. */
export async function extractFeatures(kernels: Kernels, model: Sequential, featureLayer: number, examples: Examples, options: FeatureOptions = {}): Promise<Float32Array> {
  const { flip = null, batchSize = 128, workspace } = options;
  const size = model.layers[featureLayer].outputShape.reduce((a, b) => a * b, 1);
  const perPass = imagesPerPass(batchSize, flip);
  const rows = Math.min(perPass, examples.count);
  const space = workspace ?? new Workspace(kernels);
  const features = space.take('features', examples.count * size);
  const input = space.take('input', (flip ? 2 : 1) * rows * examples.featureSize);
  const order = identityOrder(examples.count);
  // Evaluation mode draws no random numbers; the generator only satisfies the interface.
  const context = { training: false, rng: Rng.fromSeed(0) };
  try {
    for (let start = 0; start < examples.count; start += perPass) {
      const batch = Math.min(perPass, examples.count - start);
      const n = batch * size;
      examples.gather(input, order, start, batch, kernels);
      const out = features.subarray(start * size, start * size + n);
      if (!flip) {
        kernels.copy({ out, inp: model.forwardTo(input, batch, context, featureLayer), n });
        continue;
      }
      appendMirrors(kernels, input, batch, flip);
      averageMirrors(kernels, out, model.forwardTo(input, 2 * batch, context, featureLayer), batch, size);
    }
    return await kernels.read(features);
  } finally {
    if (!workspace) space.dispose();
  }
}

/**
 * The input of an MLP on CNN features, made from images as its `cnn-features` transform says:
 * the extractor's layer `featureLayer` (averaged with the mirror image's where the transform has
 * flipAverage), standardised with the transform's mean and std. `featureLayer` is given apart
 * from the transform's because a folded extractor numbers its layers differently. Its buffers
 * come from `workspace` where given (kept from call to call).
 */
export function cnnFeatureInput(
  kernels: Kernels,
  extractor: Sequential,
  featureLayer: number,
  transform: Extract<InputTransform, { type: 'cnn-features' }>,
  workspace?: Workspace,
): (images: LabelledImages) => Promise<Examples> {
  const mean = Float32Array.from(transform.mean);
  const std = Float32Array.from(transform.std);
  const flip = testFlipShape(transform.flipAverage);
  return async (images) => featureExamples(await extractFeatures(kernels, extractor, featureLayer, pixelExamples(images), { flip, workspace }), transform.mean.length, images.labels, mean, std);
}
