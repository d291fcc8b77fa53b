import type { Kernels, Tensor } from '../kernels/index.ts';
import { formatShape, shapeSize, type Layer, type LayerSpec, type ParameterSpec, type Shape } from './layer.ts';

/** 2x2 max pooling, stride 2: [B, H, W, C] -> [B, floor(H/2), floor(W/2), C]. */
export class MaxPool2D implements Layer {
  readonly spec: LayerSpec = { type: 'maxpool2d' };
  readonly inputShape: Shape;
  readonly outputShape: Shape;
  readonly parameters: readonly ParameterSpec[] = [];

  constructor(
    private readonly kernels: Kernels,
    inputShape: Shape,
  ) {
    if (inputShape.length !== 3 || inputShape[0] < 2 || inputShape[1] < 2) {
      throw new Error(`max pooling needs an image input of at least 2x2, got ${formatShape(inputShape)}`);
    }
    const [height, width, channels] = inputShape;
    this.inputShape = inputShape;
    this.outputShape = [Math.floor(height / 2), Math.floor(width / 2), channels];
  }

  bind(): void {}

  forward(out: Tensor, inp: Tensor, batch: number): void {
    const [height, width, channels] = this.inputShape;
    this.kernels.maxPool2x2({ out, inp, batch, height, width, channels });
  }

  backward(dinp: Tensor | null, dout: Tensor, inp: Tensor, out: Tensor, batch: number): void {
    const [height, width, channels] = this.inputShape;
    if (dinp) this.kernels.maxPool2x2Backward({ dinp, dout, inp, out, batch, height, width, channels });
  }
}

/** [B, H, W, C] -> [B, H·W·C]: the memory layout is already right, so this is a copy. */
export class Flatten implements Layer {
  readonly spec: LayerSpec = { type: 'flatten' };
  readonly inputShape: Shape;
  readonly outputShape: Shape;
  readonly parameters: readonly ParameterSpec[] = [];
  private readonly size: number;

  constructor(
    private readonly kernels: Kernels,
    inputShape: Shape,
  ) {
    this.inputShape = inputShape;
    this.size = shapeSize(inputShape);
    this.outputShape = [this.size];
  }

  bind(): void {}

  forward(out: Tensor, inp: Tensor, batch: number): void {
    this.kernels.copy({ out, inp, n: batch * this.size });
  }

  backward(dinp: Tensor | null, dout: Tensor, _inp: Tensor, _out: Tensor, batch: number): void {
    if (dinp) this.kernels.copy({ out: dinp, inp: dout, n: batch * this.size });
  }
}
