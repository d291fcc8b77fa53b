import type { Kernels } from '../kernels/index.ts';
import type { ForwardContext, Layer, LayerSpec, ParameterSpec, Shape } from './layer.ts';

/**
 * Batch normalisation over the last dimension (the channels of [H, W, C] images, the units of
 * [F] vectors), every other position of the batch counting as a sample:
 * y = gamma · (x - mean) / sqrt(var + eps) + beta. Training normalises with the batch's own
 * statistics and updates running averages; evaluation uses the running averages.
 *
 * The running mean and variance are stored as parameter tensors whose gradient is always zero,
 * so no optimiser changes them, and model files and checkpoints save them like the weights.
 * Plain TypeScript over the layer's buffers, so it runs on every backend.
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
  /** x̂ of the last training batch, and 1 / sqrt(var + eps) per channel. */
  private normalized: Float32Array = new Float32Array(0);
  private inverseStd: Float64Array;
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
    this.inverseStd = new Float64Array(c);
  }

  bind(values: Float32Array[], grads: Float32Array[]): void {
    [this.gamma, this.beta, this.runningMean, this.runningVar] = values;
    [this.dgamma, this.dbeta] = grads;
  }

  forward(out: Float32Array, inp: Float32Array, batch: number, context: ForwardContext): void {
    const c = this.channels;
    const rows = (batch * this.inputShape.reduce((a, b) => a * b, 1)) / c;
    this.lastTraining = context.training;
    if (!context.training) {
      for (let r = 0; r < rows; r++) {
        for (let j = 0; j < c; j++) {
          const i = r * c + j;
          out[i] = (this.gamma[j] * (inp[i] - this.runningMean[j])) / Math.sqrt(this.runningVar[j] + this.epsilon) + this.beta[j];
        }
      }
      return;
    }
    const mean = new Float64Array(c);
    const variance = new Float64Array(c);
    for (let r = 0; r < rows; r++) for (let j = 0; j < c; j++) mean[j] += inp[r * c + j];
    for (let j = 0; j < c; j++) mean[j] /= rows;
    for (let r = 0; r < rows; r++) {
      for (let j = 0; j < c; j++) {
        const d = inp[r * c + j] - mean[j];
        variance[j] += d * d;
      }
    }
    for (let j = 0; j < c; j++) {
      variance[j] /= rows;
      this.inverseStd[j] = 1 / Math.sqrt(variance[j] + this.epsilon);
      // Running variance with the unbiased estimate, as PyTorch keeps it.
      const unbiased = rows > 1 ? (variance[j] * rows) / (rows - 1) : variance[j];
      this.runningMean[j] = (1 - this.momentum) * this.runningMean[j] + this.momentum * mean[j];
      this.runningVar[j] = (1 - this.momentum) * this.runningVar[j] + this.momentum * unbiased;
    }
    if (this.normalized.length < rows * c) this.normalized = this.kernels.allocate(rows * c);
    for (let r = 0; r < rows; r++) {
      for (let j = 0; j < c; j++) {
        const i = r * c + j;
        const x = (inp[i] - mean[j]) * this.inverseStd[j];
        this.normalized[i] = x;
        out[i] = this.gamma[j] * x + this.beta[j];
      }
    }
  }

  backward(dinp: Float32Array | null, dout: Float32Array, _inp: Float32Array, _out: Float32Array, batch: number): void {
    if (!this.lastTraining) throw new Error('batch normalisation backward needs a training-mode forward pass');
    const c = this.channels;
    const rows = (batch * this.inputShape.reduce((a, b) => a * b, 1)) / c;
    // Σ dy and Σ dy·x̂ per channel give both parameter gradients and the input gradient:
    // dx = gamma · invstd / N · (N·dy - Σdy - x̂·Σ(dy·x̂)).
    const sumDy = new Float64Array(c);
    const sumDyX = new Float64Array(c);
    for (let r = 0; r < rows; r++) {
      for (let j = 0; j < c; j++) {
        const i = r * c + j;
        sumDy[j] += dout[i];
        sumDyX[j] += dout[i] * this.normalized[i];
      }
    }
    for (let j = 0; j < c; j++) {
      this.dbeta[j] += sumDy[j];
      this.dgamma[j] += sumDyX[j];
    }
    if (!dinp) return;
    for (let r = 0; r < rows; r++) {
      for (let j = 0; j < c; j++) {
        const i = r * c + j;
        const scale = (this.gamma[j] * this.inverseStd[j]) / rows;
        dinp[i] = scale * (rows * dout[i] - sumDy[j] - this.normalized[i] * sumDyX[j]);
      }
    }
  }
}
