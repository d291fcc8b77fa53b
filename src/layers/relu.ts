import type { Kernels, Tensor } from '../kernels/index.ts';
import { shapeSize, type Layer, type LayerSpec, type ParameterSpec, type Shape } from './layer.ts';

/** out = max(inp, 0), elementwise; any shape. */
export class ReLU implements Layer {
  readonly spec: LayerSpec = { type: 'relu' };
  readonly inputShape: Shape;
  readonly outputShape: Shape;
  readonly parameters: readonly ParameterSpec[] = [];
  private readonly size: number;

  constructor(
    private readonly kernels: Kernels,
    inputShape: Shape,
  ) {
    this.inputShape = inputShape;
    this.outputShape = inputShape;
    this.size = shapeSize(inputShape);
  }

  bind(): void {}

  forward(out: Tensor, inp: Tensor, batch: number): void {
    this.kernels.relu({ out, inp, n: batch * this.size });
  }

  backward(dinp: Tensor | null, dout: Tensor, _inp: Tensor, out: Tensor, batch: number): void {
    // The gradient passes where the output is positive, i.e. where the input was.
    if (dinp) this.kernels.reluBackward({ dinp, dout, out, n: batch * this.size });
  }
}
