/**
 * Inside a network: each layer's output for one input, and each layer's weights as a
 * histogram. The web app draws them (every convolution's channels as small images, vectors as
 * bar strips); they are plain functions of a model, so anyone can look the same way.
 */
import type { Examples } from '../data/dataset.ts';
import type { Kernels } from '../kernels/index.ts';
import type { LayerSpec } from '../layers/index.ts';
import type { Sequential } from '../models/sequential.ts';
import { Rng } from '../random/rng.ts';

/** One layer's output for one input. */
export interface LayerOutput {
  /** The layer's index in its model. */
  index: number;
  type: LayerSpec['type'];
  /** The output's shape: [height, width, channels] for images, [units] for vectors. */
  shape: number[];
  /** The output, in that shape (channels last). */
  values: Float32Array;
}

/**
 * Every layer's output (up to `lastLayer`, default the last) for example 0 of `examples`, in
 * evaluation mode: dropout is the identity and a normalisation uses its running statistics.
 */
export async function layerOutputs(kernels: Kernels, model: Sequential, examples: Examples, lastLayer = model.layers.length - 1): Promise<LayerOutput[]> {
  const input = kernels.allocate(examples.featureSize);
  try {
    examples.gather(input, Int32Array.of(0), 0, 1, kernels);
    // Evaluation mode draws no random numbers; the generator only satisfies the interface.
    model.forwardTo(input, 1, { training: false, rng: Rng.fromSeed(0), everyOutput: true }, lastLayer);
    const outputs: LayerOutput[] = [];
    for (let index = 0; index <= lastLayer; index++) {
      const layer = model.layers[index];
      const size = layer.outputShape.reduce((a, b) => a * b, 1);
      outputs.push({ index, type: layer.spec.type, shape: [...layer.outputShape], values: await kernels.read(model.layerOutput(index).subarray(0, size)) });
    }
    return outputs;
  } finally {
    kernels.release(input);
  }
}

/** A histogram of one layer's weights. */
export interface WeightHistogram {
  /** The parameter's name in the weights file, e.g. `layers.0.weight`. */
  name: string;
  /** The layer's index and type. */
  layer: number;
  type: LayerSpec['type'];
  count: number;
  min: number;
  max: number;
  /** Counts of `bins` equal bins from min to max. */
  counts: number[];
}

/**
 * Histograms of the weights (not the biases, nor a normalisation's scale and shift) of every
 * layer that has them, from a host copy of the model's values (readValues).
 */
export function weightHistograms(model: Sequential, values: Float32Array, bins = 30): WeightHistogram[] {
  const histograms: WeightHistogram[] = [];
  model.layers.forEach((layer, index) => {
    if (!layer.parameters.some((parameter) => parameter.name === 'weight')) return;
    const weights = model.parameterIn(values, index, 'weight');
    let min = Infinity;
    let max = -Infinity;
    for (const w of weights) {
      if (w < min) min = w;
      if (w > max) max = w;
    }
    const counts = new Array<number>(bins).fill(0);
    const width = max > min ? (max - min) / bins : 1;
    for (const w of weights) counts[Math.min(bins - 1, Math.floor((w - min) / width))]++;
    histograms.push({ name: `layers.${index}.weight`, layer: index, type: layer.spec.type, count: weights.length, min, max, counts });
  });
  return histograms;
}

/**
 * The first layer's filters as images: a first convolution's [k, k, 1, filters] weights as
 * `filters` k x k images, or a first dense layer's [784, units] weights as `units` 28 x 28
 * images (what each hidden unit looks for), at most `limit` of them. Each image is its weights
 * in the image's layout, row by row.
 */
export function firstLayerFilters(model: Sequential, values: Float32Array, limit = 64): { side: number; filters: Float32Array[] } | null {
  const index = model.layers.findIndex((layer) => layer.parameters.some((parameter) => parameter.name === 'weight'));
  if (index < 0) return null;
  const layer = model.layers[index];
  const weights = model.parameterIn(values, index, 'weight');
  if (layer.spec.type === 'conv2d') {
    const side = layer.spec.kernelSize ?? 3;
    const [, , inChannels] = layer.inputShape;
    if (inChannels !== 1) return null;
    const filters = layer.spec.filters;
    return { side, filters: Array.from({ length: Math.min(filters, limit) }, (_, f) => Float32Array.from({ length: side * side }, (_, tap) => weights[tap * filters + f])) };
  }
  if (layer.spec.type === 'dense') {
    const [inputs] = layer.inputShape;
    const side = Math.round(Math.sqrt(inputs));
    if (side * side !== inputs) return null;
    const units = layer.spec.units;
    return { side, filters: Array.from({ length: Math.min(units, limit) }, (_, u) => Float32Array.from({ length: inputs }, (_, i) => weights[i * units + u])) };
  }
  return null;
}
