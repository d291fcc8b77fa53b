import type { KernelArgs, Kernels, Tensor } from '../kernels/index.ts';
import { preparedConv2dFloats } from '../kernels/spec.ts';
import { formatShape, type ForwardContext, type Layer, type LayerSpec, type ParameterSpec, type Shape } from './layer.ts';

/**
 * 2-D convolution, stride 1, "same" zero padding, over channels-last images.
 * Shapes: inp [B, H, W, C], weight [k, k, C, filters], bias [filters], out [B, H, W, filters].
 */
export class Conv2D implements Layer {
  readonly spec: LayerSpec;
  readonly inputShape: Shape;
  readonly outputShape: Shape;
  readonly parameters: readonly ParameterSpec[];
  private readonly geometry: Pick<KernelArgs<'conv2d'>, 'height' | 'width' | 'inChannels' | 'outChannels' | 'kernelSize'>;
  private weight!: Tensor;
  private bias!: Tensor;
  private dweight!: Tensor;
  private dbias!: Tensor;
  /** The weight as conv2dPrepare leaves it, for a model that only classifies (see prepareInference). */
  private prepared: Tensor | null = null;

  constructor(
    private readonly kernels: Kernels,
    inputShape: Shape,
    filters: number,
    kernelSize = 3,
  ) {
    if (inputShape.length !== 3) throw new Error(`conv2d needs an image input [height, width, channels], got ${formatShape(inputShape)}`);
    if (!Number.isInteger(filters) || filters < 1) throw new Error(`conv2d needs a positive whole number of filters, got ${filters}`);
    if (!Number.isInteger(kernelSize) || kernelSize < 1 || kernelSize % 2 === 0) {
      throw new Error(`conv2d needs an odd kernel size ("same" padding), got ${kernelSize}`);
    }
    const [height, width, channels] = inputShape;
    this.spec = { type: 'conv2d', filters, kernelSize };
    this.inputShape = inputShape;
    this.outputShape = [height, width, filters];
    this.geometry = { height, width, inChannels: channels, outChannels: filters, kernelSize };
    const fanIn = kernelSize * kernelSize * channels;
    const fanOut = kernelSize * kernelSize * filters;
    this.parameters = [
      { name: 'weight', shape: [kernelSize, kernelSize, channels, filters], init: 'he', fanIn, fanOut, decay: true },
      { name: 'bias', shape: [filters], init: 'zeros', fanIn, fanOut, decay: false },
    ];
  }

  bind(values: Tensor[], grads: Tensor[]): void {
    [this.weight, this.bias] = values;
    [this.dweight, this.dbias] = grads;
  }

  forward(out: Tensor, inp: Tensor, batch: number, context: ForwardContext): void {
    if (this.prepared && !context.training) {
      this.kernels.conv2dPrepared({ out, inp, prepared: this.prepared, bias: this.bias, ...this.geometry, batch, relu: 0 });
      return;
    }
    const { height, width, outChannels } = this.geometry;
    this.kernels.conv2d({ out, inp, weight: this.weight, ...this.geometry, batch });
    this.kernels.addBias({ out, bias: this.bias, rows: batch * height * width, cols: outChannels });
  }

  /** Whether forwardWithRelu may be called: once prepareInference has run (and until training changes the weight). */
  get isPrepared(): boolean {
    return this.prepared !== null;
  }

  /** max(forward, 0) in one kernel, in evaluation mode after prepareInference: the convolution and the ReLU layer after it. */
  forwardWithRelu(out: Tensor, inp: Tensor, batch: number): void {
    if (!this.prepared) throw new Error('forwardWithRelu needs prepareInference first');
    this.kernels.conv2dPrepared({ out, inp, prepared: this.prepared, bias: this.bias, ...this.geometry, batch, relu: 1 });
  }

  /** The fast backends' Winograd filter transform, computed once here instead of at every forward pass. */
  prepareInference(): void {
    const { inChannels, outChannels, kernelSize } = this.geometry;
    this.dispose();
    this.prepared = this.kernels.allocate(preparedConv2dFloats(inChannels, outChannels, kernelSize));
    this.kernels.conv2dPrepare({ prepared: this.prepared, weight: this.weight, inChannels, outChannels, kernelSize });
  }

  dispose(): void {
    if (this.prepared) this.kernels.release(this.prepared);
    this.prepared = null;
  }

  backward(dinp: Tensor | null, dout: Tensor, inp: Tensor, _out: Tensor, batch: number): void {
    // Training changes the weight: what was prepared from it no longer holds.
    this.dispose();
    const { height, width, outChannels } = this.geometry;
    const shape = { ...this.geometry, batch };
    this.kernels.conv2dBackwardWeight({ dweight: this.dweight, inp, dout, ...shape });
    this.kernels.sumRows({ dbias: this.dbias, dout, rows: batch * height * width, cols: outChannels });
    if (dinp) this.kernels.conv2dBackwardInput({ dinp, dout, weight: this.weight, ...shape });
  }
}
