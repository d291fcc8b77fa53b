import type { Kernels, Tensor } from '../kernels/index.ts';
import type { Rng } from '../random/rng.ts';

/** The shape of one example, without the batch dimension: [features] or [height, width, channels]. */
export type Shape = readonly number[];

export function shapeSize(shape: Shape): number {
  return shape.reduce((product, dim) => product * dim, 1);
}

export function formatShape(shape: Shape): string {
  return `[${shape.join(', ')}]`;
}

/** How a parameter tensor is filled before training. */
export type Initializer = 'he' | 'xavier' | 'zeros' | 'ones';

export interface ParameterSpec {
  /** Name within the layer: `weight`, `bias`. */
  name: string;
  shape: Shape;
  init: Initializer;
  /** Fan-in and fan-out, for He and Xavier initialisation. */
  fanIn: number;
  fanOut: number;
  /** Whether weight decay applies (weights yes, biases no). */
  decay: boolean;
}

export interface ForwardContext {
  /** Training mode: dropout drops. Evaluation mode: every layer is deterministic. */
  training: boolean;
  /** Source of randomness for training-time layers (dropout). */
  rng: Rng;
}

/** Serializable description of a layer; `buildLayer` turns it back into a layer. */
export type LayerSpec =
  | { type: 'dense'; units: number; init?: 'he' | 'xavier' }
  | { type: 'relu' }
  | { type: 'dropout'; rate: number }
  | { type: 'conv2d'; filters: number; kernelSize?: number }
  | { type: 'maxpool2d' }
  | { type: 'flatten' }
  | { type: 'batchnorm'; momentum?: number; epsilon?: number };

/**
 * A layer computes its output shape from its input shape when it is built (and throws
 * there if it cannot), then runs forward and backward over batches of flat buffers.
 */
export interface Layer {
  readonly spec: LayerSpec;
  readonly inputShape: Shape;
  readonly outputShape: Shape;
  /** The parameter tensors this layer needs; the model allocates them all in one flat buffer. */
  readonly parameters: readonly ParameterSpec[];
  /** Hands the layer views of its parameters and their gradients, in `parameters` order. */
  bind(values: Tensor[], grads: Tensor[]): void;
  /** out[batch, ...outputShape] = layer(inp[batch, ...inputShape]). */
  forward(out: Tensor, inp: Tensor, batch: number, context: ForwardContext): void;
  /**
   * Adds this batch's parameter gradients to the bound gradient buffers and writes the
   * input gradient into `dinp`, unless it is null (nothing upstream needs it).
   * `inp` and `out` are the buffers of the last forward call.
   */
  backward(dinp: Tensor | null, dout: Tensor, inp: Tensor, out: Tensor, batch: number): void;
  /**
   * The parameters will not change any more (a model loaded to classify): compute once what
   * every forward pass in evaluation mode would compute again from them. Training afterwards
   * drops it.
   */
  prepareInference?(): void;
  /** Gives back the buffers the layer allocated itself (the model owns the parameters); the layer must not be used afterwards. */
  dispose?(): void;
}

export type { Kernels, Tensor };
