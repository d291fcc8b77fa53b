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
 *
 * The arithmetic runs on the kernels, where the values are: s and t by batchNormScaleShift
 * (the evaluation's own), W' and b' by channelAffine. No host copy: on a cold start (`fmnist
 * predict` of one image) copying and scaling the weights in JavaScript took longer than the
 * forward pass.
 */
export async function foldBatchNorm(model: Sequential, kernels: Kernels): Promise<FoldedModel> {
  const specs = model.architecture.layers;
  const folds = (index: number): boolean => specs[index].type === 'batchnorm' && index > 0 && (specs[index - 1].type === 'conv2d' || specs[index - 1].type === 'dense');
  const kept = specs.map((_, index) => index).filter((index) => !folds(index));
  // Nothing to fold (an MLP, a CNN without normalisation): the model as it is, not a copy.
  if (kept.length === specs.length) return { model, layerIndex: (index) => index };
  const layers: LayerSpec[] = kept.map((index) => ({ ...specs[index] }));
  const folded = new Sequential(kernels, { inputShape: [...model.architecture.inputShape], layers });
  kept.forEach((old, index) => {
    for (const spec of model.layers[old].parameters) {
      const from = model.parameter(old, spec.name);
      kernels.copy({ out: folded.parameter(index, spec.name), inp: from, n: from.length });
    }
    if (old + 1 >= specs.length || !folds(old + 1)) return;
    const norm = specs[old + 1] as Extract<LayerSpec, { type: 'batchnorm' }>;
    const [gamma, beta, runningMean, runningVar] = ['gamma', 'beta', 'runningMean', 'runningVar'].map((name) => model.parameter(old + 1, name));
    const weight = folded.parameter(index, 'weight');
    const bias = folded.parameter(index, 'bias');
    const channels = bias.length;
    const scale = kernels.allocate(channels);
    const shift = kernels.allocate(channels);
    const zeros = kernels.allocate(channels);
    kernels.zero({ out: zeros, n: channels });
    kernels.batchNormScaleShift({ scale, shift, gamma, beta, runningMean, runningVar, channels, epsilon: norm.epsilon ?? 1e-5 });
    // The weight's channels come last: [rows, channels], each column scaled.
    kernels.channelAffine({ out: weight, inp: model.parameter(old, 'weight'), scale, shift: zeros, rows: weight.length / channels, channels });
    kernels.channelAffine({ out: bias, inp: model.parameter(old, 'bias'), scale, shift, rows: 1, channels });
    for (const tensor of [scale, shift, zeros]) kernels.release(tensor);
  });
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
