import type { Kernels, Tensor } from '../kernels/index.ts';
import { BatchNorm, buildLayer, Conv2D, formatShape, ReLU, shapeSize, type ForwardContext, type Layer, type LayerSpec, type Shape } from '../layers/index.ts';
import type { Rng } from '../random/rng.ts';

/** One parameter tensor: views into the model's flat value and gradient buffers. */
export interface ParameterTensor {
  /** `layers.<index>.<name>`, e.g. `layers.0.weight`. */
  name: string;
  shape: Shape;
  value: Tensor;
  grad: Tensor;
  /** Offset of this tensor in the flat buffers, in floats. */
  offset: number;
  decay: boolean;
}

/** The architecture of a sequential model: enough to rebuild it. */
export interface Architecture {
  inputShape: Shape;
  layers: LayerSpec[];
}

export interface SequentialOptions {
  /**
   * In training, run a batch normalisation and the ReLU after it as one pass (the same bits;
   * the normalisation's own output is then never written). Default true; false runs every
   * layer on its own.
   */
  fuse?: boolean;
}

/**
 * A stack of layers. All parameters live in one flat buffer and their gradients in a twin
 * buffer of the same layout, so clearing the gradients is one `zero` kernel call and an
 * optimiser can treat them as one vector. Activations and their gradients are kept per layer
 * boundary, sized for the largest batch seen so far.
 */
export class Sequential {
  readonly architecture: Architecture;
  readonly layers: readonly Layer[];
  readonly parameters: readonly ParameterTensor[];
  /** All parameter values, concatenated in `parameters` order. */
  readonly values: Tensor;
  /** All parameter gradients, in the same layout as `values`. */
  readonly grads: Tensor;
  readonly outputSize: number;
  /** activations[i] is the input of layer i; activations[layers.length] the output. [0] is the caller's. */
  private activations: Tensor[] = [];
  /** gradients[i] is d(loss)/d(activations[i]); [0] is never computed. */
  private gradients: Tensor[] = [];
  private capacity = 0;
  /** fusedRelu[i]: layer i, when it is a batch normalisation that runs the ReLU of layer i + 1 in training; else null. */
  private readonly fusedRelu: (BatchNorm | null)[];

  constructor(
    private readonly kernels: Kernels,
    architecture: Architecture,
    options: SequentialOptions = {},
  ) {
    this.architecture = { inputShape: [...architecture.inputShape], layers: architecture.layers.map((spec) => ({ ...spec })) };
    const layers: Layer[] = [];
    let shape: Shape = architecture.inputShape;
    architecture.layers.forEach((spec, index) => {
      try {
        layers.push(buildLayer(spec, shape, kernels));
      } catch (error) {
        const reason = error instanceof Error ? error.message : String(error);
        throw new Error(`layer ${index} (${spec.type}) cannot take input of shape ${formatShape(shape)}: ${reason}`, { cause: error });
      }
      shape = layers[index].outputShape;
    });
    this.layers = layers;
    this.outputSize = shapeSize(shape);
    this.fusedRelu = layers.map((layer, i) => ((options.fuse ?? true) && layer instanceof BatchNorm && layers[i + 1] instanceof ReLU ? layer : null));

    const specs = layers.flatMap((layer, index) => layer.parameters.map((parameter) => ({ index, parameter })));
    const total = specs.reduce((sum, { parameter }) => sum + shapeSize(parameter.shape), 0);
    this.values = kernels.allocate(total);
    this.grads = kernels.allocate(total);
    const parameters: ParameterTensor[] = [];
    let offset = 0;
    for (const { index, parameter } of specs) {
      const size = shapeSize(parameter.shape);
      parameters.push({
        name: `layers.${index}.${parameter.name}`,
        shape: parameter.shape,
        value: this.values.subarray(offset, offset + size),
        grad: this.grads.subarray(offset, offset + size),
        offset,
        decay: parameter.decay,
      });
      offset += size;
    }
    this.parameters = parameters;
    layers.forEach((layer, index) => {
      const own = parameters.filter((parameter) => parameter.name.startsWith(`layers.${index}.`));
      layer.bind(
        own.map((parameter) => parameter.value),
        own.map((parameter) => parameter.grad),
      );
    });
  }

  get parameterCount(): number {
    return this.values.length;
  }

  /** Layer `layer`'s parameter `name` (`weight`, `bias`, `gamma`...). */
  private tensor(layer: number, name: string): ParameterTensor {
    const tensor = this.parameters.find((parameter) => parameter.name === `layers.${layer}.${name}`);
    if (!tensor) throw new Error(`layer ${layer} has no parameter ${name}`);
    return tensor;
  }

  /** The values of layer `layer`'s parameter `name` (`weight`, `bias`, `gamma`...), a view into `values`. */
  parameter(layer: number, name: string): Tensor {
    return this.tensor(layer, name).value;
  }

  /** Layer `layer`'s parameter `name` within a host copy of `values` (from readValues): a view into it. */
  parameterIn(values: Float32Array, layer: number, name: string): Float32Array {
    const { offset, value } = this.tensor(layer, name);
    return values.subarray(offset, offset + value.length);
  }

  /** A host copy of every parameter value, in the layout of `values` (waits for a GPU). */
  readValues(): Promise<Float32Array> {
    return this.kernels.read(this.values);
  }

  /** Sets every parameter value from a host array in the layout of `values`. */
  writeValues(values: Float32Array): void {
    if (values.length !== this.values.length) throw new Error(`the model has ${this.values.length} parameters, not ${values.length}`);
    this.kernels.write(this.values, values);
  }

  /**
   * Fills the parameters: He (normal, std sqrt(2 / fanIn)), Xavier (uniform, ±sqrt(6 / (fanIn +
   * fanOut))), zeros or ones, drawn in the host's memory in parameter order and written once.
   */
  initialize(rng: Rng): void {
    const values = new Float32Array(this.values.length);
    for (const [index, layer] of this.layers.entries()) {
      for (const spec of layer.parameters) {
        const value = this.parameterIn(values, index, spec.name);
        if (spec.init === 'zeros') {
          value.fill(0);
        } else if (spec.init === 'ones') {
          value.fill(1);
        } else if (spec.init === 'he') {
          const std = Math.sqrt(2 / spec.fanIn);
          for (let i = 0; i < value.length; i++) value[i] = rng.normal() * std;
        } else {
          const limit = Math.sqrt(6 / (spec.fanIn + spec.fanOut));
          for (let i = 0; i < value.length; i++) value[i] = (2 * rng.uniform() - 1) * limit;
        }
      }
    }
    this.writeValues(values);
  }

  zeroGrad(): void {
    this.kernels.zero({ out: this.grads, n: this.grads.length });
  }

  /** Runs the batch through every layer; returns the output buffer ([batch, outputSize] at its start). */
  forward(input: Tensor, batch: number, context: ForwardContext): Tensor {
    return this.forwardTo(input, batch, context, this.layers.length - 1);
  }

  /**
   * Runs the batch through layers 0 .. lastLayer only; returns that layer's output buffer
   * ([batch, size of its output] at its start). For feature extraction.
   */
  forwardTo(input: Tensor, batch: number, context: ForwardContext, lastLayer: number): Tensor {
    this.reserve(batch);
    this.activations[0] = input;
    for (let i = 0; i <= lastLayer; i++) {
      const fused = this.withRelu(i, lastLayer, context);
      if (fused) {
        // The ReLU's output straight from the layer's input; activations[i + 1] is not written.
        fused.forwardWithRelu(this.activations[i + 2], this.activations[i], batch);
        i++;
      } else {
        this.layers[i].forward(this.activations[i + 1], this.activations[i], batch, context);
      }
    }
    return this.activations[lastLayer + 1];
  }

  /**
   * Layer i, where this pass runs it and the ReLU after it as one kernel: in training a batch
   * normalisation followed by a ReLU; in evaluation a prepared convolution followed by a ReLU
   * (not with `everyOutput`); in both only where the ReLU is not past `lastLayer`.
   */
  private withRelu(i: number, lastLayer: number, context: ForwardContext): BatchNorm | Conv2D | null {
    if (i >= lastLayer) return null;
    if (context.training) return this.fusedRelu[i];
    const layer = this.layers[i];
    return !context.everyOutput && layer instanceof Conv2D && layer.isPrepared && this.layers[i + 1] instanceof ReLU ? layer : null;
  }

  /**
   * Layer `index`'s output of the last forward pass ([batch, ...its output shape] at its start),
   * for looking inside the network. In training a normalisation run with its ReLU leaves its own
   * output unwritten, and so does a prepared convolution in evaluation; a pass whose context has
   * `everyOutput` writes every layer's.
   */
  layerOutput(index: number): Tensor {
    if (index < 0 || index >= this.layers.length || this.activations.length === 0) throw new Error(`layer ${index} has no output yet (the model has ${this.layers.length} layers)`);
    return this.activations[index + 1];
  }

  /** The buffer the loss writes d(loss)/d(output) into before `backward`. */
  get outputGradient(): Tensor {
    return this.gradients[this.layers.length];
  }

  /** Backpropagates `outputGradient` through the layers of the last forward call, adding to `grads`. */
  backward(batch: number): void {
    for (let i = this.layers.length - 1; i >= 0; i--) {
      const dinp = i === 0 ? null : this.gradients[i];
      this.layers[i].backward(dinp, this.gradients[i + 1], this.activations[i], this.activations[i + 1], batch);
    }
  }


  /**
   * For a model that only classifies from now on: each layer computes once what its forward
   * passes reuse (see Layer.prepareInference), and evaluation then runs each convolution and its
   * ReLU as one kernel (the convolution's own output, before the ReLU, is no longer written).
   */
  prepareInference(): void {
    for (const layer of this.layers) layer.prepareInference?.();
  }

  /**
   * Gives every buffer of the model back to the kernels: parameters, gradients, activations and
   * the layers' own. The model must not be used afterwards.
   */
  dispose(): void {
    this.releaseActivations();
    for (const layer of this.layers) layer.dispose?.();
    this.kernels.release(this.values);
    this.kernels.release(this.grads);
  }

  private releaseActivations(): void {
    // activations[0] is the caller's input, not the model's.
    for (const buffer of [...this.activations.slice(1), ...this.gradients.slice(1)]) this.kernels.release(buffer);
    this.activations = [];
    this.gradients = [];
    this.capacity = 0;
  }

  private reserve(batch: number): void {
    if (batch <= this.capacity) return;
    this.releaseActivations();
    // [0] of each is the caller's input and a gradient never computed.
    this.activations = [this.values.subarray(0, 0)];
    this.gradients = [this.values.subarray(0, 0)];
    for (const layer of this.layers) {
      const size = shapeSize(layer.outputShape) * batch;
      this.activations.push(this.kernels.allocate(size));
      this.gradients.push(this.kernels.allocate(size));
    }
    this.capacity = batch;
  }
}
