import type { KernelArgs, Kernels, Tensor } from '../kernels/index.ts';
import { formatShape, type Layer, type LayerSpec, type ParameterSpec, type Shape } from './layer.ts';

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

  forward(out: Tensor, inp: Tensor, batch: number): void {
    const { height, width, outChannels } = this.geometry;
    this.kernels.conv2d({ out, inp, weight: this.weight, ...this.geometry, batch });
    this.kernels.addBias({ out, bias: this.bias, rows: batch * height * width, cols: outChannels });
  }

  backward(dinp: Tensor | null, dout: Tensor, inp: Tensor, _out: Tensor, batch: number): void {
    const { height, width, outChannels } = this.geometry;
    const shape = { ...this.geometry, batch };
    this.kernels.conv2dBackwardWeight({ dweight: this.dweight, inp, dout, ...shape });
    this.kernels.sumRows({ dbias: this.dbias, dout, rows: batch * height * width, cols: outChannels });
    if (dinp) this.kernels.conv2dBackwardInput({ dinp, dout, weight: this.weight, ...shape });
  }
}
