import type { Kernels } from '../kernels/index.ts';
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
 * The passes over the batch are kernels; only per-channel arithmetic is done here.
 * Shapes: inp, out [rows, channels] with rows = batch · H · W (or batch); the rest [channels].
 */
export class BatchNorm implements Layer {
  readonly spec: LayerSpec;
  readonly inputShape: Shape;
  readonly outputShape: Shape;
  readonly parameters: readonly ParameterSpec[];
  private readonly channels: number;
  private gamma: Float32Array = new Float32Array(0);
  private beta: Float32Array = new Float32Array(0);
  private runningMean: Float32Array = new Float32Array(0);
  private runningVar: Float32Array = new Float32Array(0);
  private dgamma: Float32Array = new Float32Array(0);
  private dbeta: Float32Array = new Float32Array(0);
  /** x̂ of the last training batch [rows, channels]. */
  private normalized: Float32Array = new Float32Array(0);
  /** Per channel: the batch's mean and variance, 1 / sqrt(var + eps); the scale and shift of a pass; the backward pass's sums and factors. */
  private readonly mean: Float32Array;
  private readonly variance: Float32Array;
  private readonly invStd: Float32Array;
  private readonly scale: Float32Array;
  private readonly shift: Float32Array;
  private readonly sumDout: Float32Array;
  private readonly sumDoutNormalized: Float32Array;
  private readonly normalizedScale: Float32Array;
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

  bind(values: Float32Array[], grads: Float32Array[]): void {
    [this.gamma, this.beta, this.runningMean, this.runningVar] = values;
    [this.dgamma, this.dbeta] = grads;
  }

  dispose(): void {
    for (const buffer of [this.mean, this.variance, this.invStd, this.scale, this.shift, this.sumDout, this.sumDoutNormalized, this.normalizedScale]) this.kernels.release(buffer);
    if (this.normalized.length > 0) this.kernels.release(this.normalized);
    this.normalized = new Float32Array(0);
  }

  private rows(batch: number): number {
    return (batch * this.inputShape.reduce((a, b) => a * b, 1)) / this.channels;
  }

  forward(out: Float32Array, inp: Float32Array, batch: number, context: ForwardContext): void {
    this.normalize(out, inp, batch, context.training, false);
  }

  /**
   * Training only: this layer and the ReLU after it in one pass, `out` the ReLU's output: the
   * bits of `forward` then the ReLU's, without writing this layer's own output. The backward
   * passes are the layers' own (the ReLU's needs only its output).
   */
  forwardWithRelu(out: Float32Array, inp: Float32Array, batch: number): void {
    this.normalize(out, inp, batch, true, true);
  }

  private normalize(out: Float32Array, inp: Float32Array, batch: number, training: boolean, relu: boolean): void {
    const { channels, kernels } = this;
    const rows = this.rows(batch);
    this.lastTraining = training;
    if (!training) {
      for (let j = 0; j < channels; j++) {
        this.scale[j] = this.gamma[j] / Math.sqrt(this.runningVar[j] + this.epsilon);
        this.shift[j] = this.beta[j] - this.runningMean[j] * this.scale[j];
      }
      kernels.channelAffine({ out, inp, scale: this.scale, shift: this.shift, rows, channels });
      return;
    }
    kernels.batchNormStatistics({ mean: this.mean, variance: this.variance, inp, rows, channels });
    for (let j = 0; j < channels; j++) {
      this.invStd[j] = 1 / Math.sqrt(this.variance[j] + this.epsilon);
      // Running variance with the unbiased estimate, as PyTorch keeps it.
      const unbiased = rows > 1 ? (this.variance[j] * rows) / (rows - 1) : this.variance[j];
      this.runningMean[j] = (1 - this.momentum) * this.runningMean[j] + this.momentum * this.mean[j];
      this.runningVar[j] = (1 - this.momentum) * this.runningVar[j] + this.momentum * unbiased;
    }
    if (this.normalized.length < rows * channels) {
      if (this.normalized.length > 0) kernels.release(this.normalized);
      this.normalized = kernels.allocate(rows * channels);
    }
    const args = { out, normalized: this.normalized, inp, mean: this.mean, invStd: this.invStd, gamma: this.gamma, beta: this.beta, rows, channels };
    if (relu) kernels.batchNormReluForward(args);
    else kernels.batchNormForward(args);
  }

  backward(dinp: Float32Array | null, dout: Float32Array, _inp: Float32Array, _out: Float32Array, batch: number): void {
    if (!this.lastTraining) throw new Error('batch normalisation backward needs a training-mode forward pass');
    const { channels, kernels } = this;
    const rows = this.rows(batch);
    // Σ dy and Σ dy·x̂ per channel give both parameter gradients and the input gradient:
    // dx = gamma · invstd · dy - gamma · invstd · Σdy / N - x̂ · gamma · invstd · Σ(dy·x̂) / N.
    kernels.batchNormBackwardSums({ sumDout: this.sumDout, sumDoutNormalized: this.sumDoutNormalized, dout, normalized: this.normalized, rows, channels });
    for (let j = 0; j < channels; j++) {
      this.dbeta[j] += this.sumDout[j];
      this.dgamma[j] += this.sumDoutNormalized[j];
      const doutScale = this.gamma[j] * this.invStd[j];
      this.scale[j] = doutScale;
      this.shift[j] = (doutScale * this.sumDout[j]) / rows;
      this.normalizedScale[j] = (doutScale * this.sumDoutNormalized[j]) / rows;
    }
    if (!dinp) return;
    kernels.batchNormBackward({ dinp, dout, normalized: this.normalized, doutScale: this.scale, offset: this.shift, normalizedScale: this.normalizedScale, rows, channels });
  }
}
