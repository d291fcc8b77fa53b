import { featureExamples, identityOrder, pixelExamples, type Examples } from '../data/dataset.ts';
import type { LabelledImages } from '../data/verify.ts';
import { mirrorImages, testFlipShape } from '../evaluation/predict.ts';
import type { Kernels } from '../kernels/index.ts';
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
}

/**
 * Whether the features a pipeline saves of this CNN average each image's with its mirror
 * image's: where the CNN flips at test time, as it averages their probabilities.
 */
export function averagesMirrorFeatures(cnn: Pick<ModelDescription, 'testTimeFlip'>): boolean {
  return cnn.testTimeFlip === true;
}

/** The features a pipeline saves of these images: the CNN's feature layer, averaged as averagesMirrorFeatures says. */
export function pipelineFeatures(kernels: Kernels, model: Sequential, description: ModelDescription, images: LabelledImages): Float32Array {
  if (description.featureLayer === undefined) throw new Error('the model has no feature layer');
  return extractFeatures(kernels, model, description.featureLayer, pixelExamples(images), { flip: testFlipShape(averagesMirrorFeatures(description)) });
}

/** The output of layer `featureLayer` for every example, in evaluation mode: [count, features]. */
export function extractFeatures(kernels: Kernels, model: Sequential, featureLayer: number, examples: Examples, options: FeatureOptions = {}): Float32Array {
  const { flip = null, batchSize = 128 } = options;
  const size = model.layers[featureLayer].outputShape.reduce((a, b) => a * b, 1);
  const features = new Float32Array(examples.count * size);
  const input = kernels.allocate(Math.min(batchSize, examples.count) * examples.featureSize);
  const order = identityOrder(examples.count);
  // Evaluation mode draws no random numbers; the generator only satisfies the interface.
  const context = { training: false, rng: Rng.fromSeed(0) };
  try {
    for (let start = 0; start < examples.count; start += batchSize) {
      const batch = Math.min(batchSize, examples.count - start);
      examples.gather(input, order, start, batch, kernels);
      const own = features.subarray(start * size, (start + batch) * size);
      own.set(model.forwardTo(input, batch, context, featureLayer).subarray(0, batch * size));
      if (!flip) continue;
      mirrorImages(input, batch, flip);
      const mirrored = model.forwardTo(input, batch, context, featureLayer);
      for (let i = 0; i < own.length; i++) own[i] = 0.5 * (own[i] + mirrored[i]);
    }
  } finally {
    kernels.release(input);
  }
  return features;
}

/**
 * The input of an MLP on CNN features, made from images as its `cnn-features` transform says:
 * the extractor's layer `featureLayer` (averaged with the mirror image's where the transform has
 * flipAverage), standardised with the transform's mean and std. `featureLayer` is given apart
 * from the transform's because a folded extractor numbers its layers differently.
 */
export function cnnFeatureInput(
  kernels: Kernels,
  extractor: Sequential,
  featureLayer: number,
  transform: Extract<InputTransform, { type: 'cnn-features' }>,
): (images: LabelledImages) => Examples {
  const mean = Float32Array.from(transform.mean);
  const std = Float32Array.from(transform.std);
  const flip = testFlipShape(transform.flipAverage);
  return (images) => featureExamples(extractFeatures(kernels, extractor, featureLayer, pixelExamples(images), { flip }), transform.mean.length, images.labels, mean, std);
}
