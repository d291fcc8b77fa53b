import type { Kernels, Tensor } from '../kernels/index.ts';
import type { ForwardContext, Layer, LayerSpec, ParameterSpec, Shape } from './layer.ts';

/**
 * Batch normalisation over the last dimension (the channels of [H, W, C] images, the units of
 * [F] vectors), every other position of the batch counting as a sample:
 * y = gamma · (x - mean) / sqrt(var + eps) + beta. Training normalises with the batch's own
 * statistics and updates running averages; evaluation uses the running averages, as one
 * scale and shift per channel.
 *
 * The running mean and variance are stored as parameter tensors whose gradient is always zero,
 * so no optimiser changes them, and model files and checkpoints save them like the weights.
 * Every pass, over the batch or per channel, is a kernel, so that the layer runs where its
 * tensors are (a GPU's memory included).
 * Shapes: inp, out [rows, channels] with rows = batch · H · W (or batch); the rest [channels].
 */
export class BatchNorm implements Layer {
  readonly spec: LayerSpec;
  readonly inputShape: Shape;
  readonly outputShape: Shape;
  readonly parameters: readonly ParameterSpec[];
  private readonly channels: number;
  private gamma!: Tensor;
  private beta!: Tensor;
  private runningMean!: Tensor;
  private runningVar!: Tensor;
  private dgamma!: Tensor;
  private dbeta!: Tensor;
  /** x̂ of the last training batch [rows, channels]; allocated by the first training batch. */
  private normalized: Tensor | null = null;
  /** Per channel: the batch's mean and variance, 1 / sqrt(var + eps); the scale and shift of a pass; the backward pass's sums and factors. */
  private readonly mean: Tensor;
  private readonly variance: Tensor;
  private readonly invStd: Tensor;
  private readonly scale: Tensor;
  private readonly shift: Tensor;
  private readonly sumDout: Tensor;
  private readonly sumDoutNormalized: Tensor;
  private readonly normalizedScale: Tensor;
  private lastTraining = false;

  constructor(
    private readonly kernels: Kernels,
    inputShape: Shape,
    private readonly momentum = 0.1,
    private readonly epsilon = 1e-5,
  ) {
    if (inputShape.length === 0) throw new Error('batch normalisation needs an input with at least one dimension');
    this.spec = { type: 'batchnorm', momentum, epsilon };
    this.inputShape = inputShape;
    this.outputShape = inputShape;
    this.channels = inputShape[inputShape.length - 1];
    const c = this.channels;
    const spec = (name: string, init: 'ones' | 'zeros'): ParameterSpec => ({ name, shape: [c], init, fanIn: c, fanOut: c, decay: false });
    this.parameters = [spec('gamma', 'ones'), spec('beta', 'zeros'), spec('runningMean', 'zeros'), spec('runningVar', 'ones')];
    [this.mean, this.variance, this.invStd, this.scale, this.shift, this.sumDout, this.sumDoutNormalized, this.normalizedScale] = Array.from({ length: 8 }, () =>
      kernels.allocate(c),
    );
  }

  bind(values: Tensor[], grads: Tensor[]): void {
    [this.gamma, this.beta, this.runningMean, this.runningVar] = values;
    [this.dgamma, this.dbeta] = grads;
  }

  dispose(): void {
    for (const tensor of [this.mean, this.variance, this.invStd, this.scale, this.shift, this.sumDout, this.sumDoutNormalized, this.normalizedScale]) this.kernels.release(tensor);
    if (this.normalized) this.kernels.release(this.normalized);
    this.normalized = null;
  }

  private rows(batch: number): number {
    return (batch * this.inputShape.reduce((a, b) => a * b, 1)) / this.channels;
  }

  forward(out: Tensor, inp: Tensor, batch: number, context: ForwardContext): void {
    this.normalize(out, inp, batch, context.training, false);
  }

  /**
   * Training only: this layer and the ReLU after it in one pass, `out` the ReLU's output: the
   * bits of `forward` then the ReLU's, without writing this layer's own output. The backward
   * passes are the layers' own (the ReLU's needs only its output).
   */
  forwardWithRelu(out: Tensor, inp: Tensor, batch: number): void {
    this.normalize(out, inp, batch, true, true);
  }

  private normalize(out: Tensor, inp: Tensor, batch: number, training: boolean, relu: boolean): void {
    const { channels, kernels, epsilon } = this;
    const rows = this.rows(batch);
    this.lastTraining = training;
    if (!training) {
      kernels.batchNormScaleShift({ scale: this.scale, shift: this.shift, gamma: this.gamma, beta: this.beta, runningMean: this.runningMean, runningVar: this.runningVar, channels, epsilon });
      kernels.channelAffine({ out, inp, scale: this.scale, shift: this.shift, rows, channels });
      return;
    }
    kernels.batchNormStatistics({ mean: this.mean, variance: this.variance, inp, rows, channels });
    kernels.batchNormUpdate({ invStd: this.invStd, runningMean: this.runningMean, runningVar: this.runningVar, mean: this.mean, variance: this.variance, rows, channels, momentum: this.momentum, epsilon });
    if (!this.normalized || this.normalized.length < rows * channels) {
      if (this.normalized) kernels.release(this.normalized);
      this.normalized = kernels.allocate(rows * channels);
    }
    const args = { out, normalized: this.normalized, inp, mean: this.mean, invStd: this.invStd, gamma: this.gamma, beta: this.beta, rows, channels };
    if (relu) kernels.batchNormReluForward(args);
    else kernels.batchNormForward(args);
  }

  backward(dinp: Tensor | null, dout: Tensor, _inp: Tensor, _out: Tensor, batch: number): void {
    if (!this.lastTraining || !this.normalized) throw new Error('batch normalisation backward needs a training-mode forward pass');
    const { channels, kernels } = this;
    const rows = this.rows(batch);
    // Σ dy and Σ dy·x̂ per channel give both parameter gradients and the input gradient:
    // dx = gamma · invstd · dy - gamma · invstd · Σdy / N - x̂ · gamma · invstd · Σ(dy·x̂) / N.
    kernels.batchNormBackwardSums({ sumDout: this.sumDout, sumDoutNormalized: this.sumDoutNormalized, dout, normalized: this.normalized, rows, channels });
    // dbeta += Σ dy and dgamma += Σ dy·x̂: each a sum over one row.
    kernels.sumRows({ dbias: this.dbeta, dout: this.sumDout, rows: 1, cols: channels });
    kernels.sumRows({ dbias: this.dgamma, dout: this.sumDoutNormalized, rows: 1, cols: channels });
    if (!dinp) return;
    kernels.batchNormBackwardFactors({
      doutScale: this.scale,
      offset: this.shift,
      normalizedScale: this.normalizedScale,
      sumDout: this.sumDout,
      sumDoutNormalized: this.sumDoutNormalized,
      gamma: this.gamma,
      invStd: this.invStd,
      rows,
      channels,
    });
    kernels.batchNormBackward({ dinp, dout, normalized: this.normalized, doutScale: this.scale, offset: this.shift, normalizedScale: this.normalizedScale, rows, channels });
  }
}
