import type { Kernels, Tensor } from '../kernels/index.ts';
import { formatShape, type Layer, type LayerSpec, type ParameterSpec, type Shape } from './layer.ts';

/**
 * Fully connected layer: out = inp · W + b.
 * Shapes: inp [B, in], W [in, units], b [units], out [B, units].
 */
export class Dense implements Layer {
  readonly spec: LayerSpec;
  readonly inputShape: Shape;
  readonly outputShape: Shape;
  readonly parameters: readonly ParameterSpec[];
  private readonly inputs: number;
  private readonly units: number;
  private weight!: Tensor;
  private bias!: Tensor;
  private dweight!: Tensor;
  private dbias!: Tensor;

  constructor(
    private readonly kernels: Kernels,
    inputShape: Shape,
    units: number,
    init: 'he' | 'xavier' = 'he',
  ) {
    if (inputShape.length !== 1) {
      throw new Error(`dense layer needs a flat input [features], got ${formatShape(inputShape)}; flatten it first`);
    }
    if (!Number.isInteger(units) || units < 1) throw new Error(`dense layer needs a positive whole number of units, got ${units}`);
    this.spec = { type: 'dense', units, init };
    this.inputShape = inputShape;
    this.outputShape = [units];
    this.inputs = inputShape[0];
    this.units = units;
    this.parameters = [
      { name: 'weight', shape: [this.inputs, units], init, fanIn: this.inputs, fanOut: units, decay: true },
      { name: 'bias', shape: [units], init: 'zeros', fanIn: this.inputs, fanOut: units, decay: false },
    ];
  }

  bind(values: Tensor[], grads: Tensor[]): void {
    [this.weight, this.bias] = values;
    [this.dweight, this.dbias] = grads;
  }

  forward(out: Tensor, inp: Tensor, batch: number): void {
    this.kernels.matmul({ c: out, a: inp, b: this.weight, m: batch, k: this.inputs, n: this.units, accumulate: false });
    this.kernels.addBias({ out, bias: this.bias, rows: batch, cols: this.units });
  }

  backward(dinp: Tensor | null, dout: Tensor, inp: Tensor, _out: Tensor, batch: number): void {
    // dW[in, units] += inpᵀ · dout ; db[units] += Σ_batch dout ; dinp[B, in] = dout · Wᵀ
    this.kernels.matmulTransA({ c: this.dweight, a: inp, b: dout, m: this.inputs, k: batch, n: this.units, accumulate: true });
    this.kernels.sumRows({ dbias: this.dbias, dout, rows: batch, cols: this.units });
    if (dinp) this.kernels.matmulTransB({ c: dinp, a: dout, b: this.weight, m: batch, k: this.units, n: this.inputs, accumulate: false });
  }
}
