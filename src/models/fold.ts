import type { Kernels } from '../kernels/index.ts';
import type { LayerSpec } from '../layers/index.ts';
import { Sequential } from './sequential.ts';

/** A model with its batch normalisation folded away, and where each old layer's output now is. */
export interface FoldedModel {
  model: Sequential;
  /** The index in the folded model of the layer whose output equals old layer `index`'s. */
  layerIndex(index: number): number;
}

/**
 * Folds each batch normalisation that follows a convolution or a dense layer into that layer,
 * for inference. In evaluation a normalisation is one scale and shift per channel,
 * y = s·x + t with s = gamma / sqrt(runningVar + eps) and t = beta - runningMean·s; after a
 * layer x = W·a + b whose weights end with the output channel ([kh, kw, in, out] and
 * [inputs, units]) it is the same layer with W'[..., c] = W[..., c]·s[c] and b' = b·s + t.
 * The folded model computes the same outputs, rounded differently, with one pass over the
 * activations less per normalisation. Normalisations after any other layer are kept. Training
 * and the recorded evaluations use the unfolded model; `fmnist predict` and `serve` this one.
 * The folded model is a new one beside `model` (dispose of `model` if it is no longer needed).
 */
export async function foldBatchNorm(model: Sequential, kernels: Kernels): Promise<FoldedModel> {
  const specs = model.architecture.layers;
  const folds = (index: number): boolean => specs[index].type === 'batchnorm' && index > 0 && (specs[index - 1].type === 'conv2d' || specs[index - 1].type === 'dense');
  const kept = specs.map((_, index) => index).filter((index) => !folds(index));
  // Nothing to fold (an MLP, a CNN without normalisation): the model as it is, not a copy.
  if (kept.length === specs.length) return { model, layerIndex: (index) => index };
  const layers: LayerSpec[] = kept.map((index) => ({ ...specs[index] }));
  const folded = new Sequential(kernels, { inputShape: [...model.architecture.inputShape], layers });
  // The arithmetic on host copies of both models' values, written to the folded model once.
  const values = await model.readValues();
  const foldedValues = new Float32Array(folded.values.length);
  kept.forEach((old, index) => {
    for (const spec of model.layers[old].parameters) folded.parameterIn(foldedValues, index, spec.name).set(model.parameterIn(values, old, spec.name));
    if (old + 1 >= specs.length || !folds(old + 1)) return;
    const norm = specs[old + 1] as Extract<LayerSpec, { type: 'batchnorm' }>;
    const [gamma, beta, mean, variance] = ['gamma', 'beta', 'runningMean', 'runningVar'].map((name) => model.parameterIn(values, old + 1, name));
    const weight = folded.parameterIn(foldedValues, index, 'weight');
    const bias = folded.parameterIn(foldedValues, index, 'bias');
    const channels = bias.length;
    const scale = Float64Array.from(gamma, (g, c) => g / Math.sqrt(variance[c] + (norm.epsilon ?? 1e-5)));
    // Row by row (the channels last): no remainder per element, which cost most of a cold start.
    for (let row = 0; row < weight.length; row += channels) {
      for (let c = 0; c < channels; c++) weight[row + c] *= scale[c];
    }
    for (let c = 0; c < channels; c++) bias[c] = bias[c] * scale[c] + beta[c] - mean[c] * scale[c];
  });
  folded.writeValues(foldedValues);
  // Old layer i's output is the output of the last kept layer at or before it (a folded
  // normalisation's output is its convolution's, now scaled and shifted).
  const layerIndex = (index: number): number => {
    let last = -1;
    kept.forEach((old, i) => {
      if (old <= index) last = i;
    });
    if (last < 0) throw new Error(`layer ${index} is not in the model`);
    return last;
  };
  return { model: folded, layerIndex };
}
