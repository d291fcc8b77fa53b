import type { Kernels, Tensor } from '../kernels/index.ts';
import type { ParameterTensor } from '../models/sequential.ts';

/** What an optimiser carries from step to step, for checkpoints, in the host's memory. */
export interface OptimizerState {
  steps: number;
  /** Its buffers (momentum; Adam's two moments), each laid out like the model's parameters. */
  buffers: Float32Array[];
}

/** Updates parameters from their gradients; one small class per algorithm. */
export interface Optimizer {
  /**
   * Applies one update at `learningRate` to every tensor, from its current gradient; where
   * `scales` is given, tensor i's learning rate is `learningRate · scales[i]`, and a tensor
   * whose scale is 0 is left as it is (frozen).
   */
  step(parameters: readonly ParameterTensor[], learningRate: number, scales?: readonly number[]): void;
  /** A copy of the state in the host's memory (waits for a GPU). */
  state(): Promise<OptimizerState>;
  /** Continues from a saved state. */
  restore(state: OptimizerState): void;
  /** Gives the state's buffers back to the kernels; the optimiser must not be used afterwards. */
  dispose(): void;
}

function restoreBuffers(kernels: Kernels, name: string, own: Tensor[], saved: Float32Array[]): void {
  if (saved.length !== own.length || saved.some((buffer, i) => buffer.length !== own[i].length)) {
    throw new Error(`the saved ${name} state does not fit this model`);
  }
  saved.forEach((buffer, i) => kernels.write(own[i], buffer));
}

export interface SgdOptions {
  /** Momentum coefficient; 0 is plain SGD. Default 0.9. */
  momentum?: number;
  /** Nesterov momentum. Default false. */
  nesterov?: boolean;
  /** L2 penalty on weights (not biases). Default 0. */
  weightDecay?: number;
}

/** SGD with optional (Nesterov) momentum: v = μv + g; p -= lr·(nesterov ? g + μv : v). */
export class Sgd implements Optimizer {
  private readonly velocity: Tensor;
  private readonly momentum: number;
  private readonly nesterov: boolean;
  private readonly weightDecay: number;

  constructor(
    private readonly kernels: Kernels,
    parameterCount: number,
    options: SgdOptions = {},
  ) {
    this.velocity = kernels.allocate(parameterCount);
    this.momentum = options.momentum ?? 0.9;
    this.nesterov = options.nesterov ?? false;
    this.weightDecay = options.weightDecay ?? 0;
  }

  async state(): Promise<OptimizerState> {
    return { steps: 0, buffers: [await this.kernels.read(this.velocity)] };
  }

  restore(state: OptimizerState): void {
    restoreBuffers(this.kernels, 'SGD', [this.velocity], state.buffers);
  }

  dispose(): void {
    this.kernels.release(this.velocity);
  }

  step(parameters: readonly ParameterTensor[], learningRate: number, scales?: readonly number[]): void {
    parameters.forEach((p, i) => {
      const scale = scales?.[i] ?? 1;
      if (scale === 0) return;
      const velocity = this.velocity.subarray(p.offset, p.offset + p.value.length);
      this.kernels.sgdStep({
        param: p.value,
        grad: p.grad,
        velocity,
        n: p.value.length,
        learningRate: learningRate * scale,
        momentum: this.momentum,
        nesterov: this.nesterov,
        weightDecay: p.decay ? this.weightDecay : 0,
      });
    });
  }
}

export interface AdamOptions {
  /** Default 0.9. */
  beta1?: number;
  /** Default 0.999. */
  beta2?: number;
  /** Default 1e-8. */
  epsilon?: number;
  /** L2 penalty on weights (not biases), added to the gradient. Default 0. */
  weightDecay?: number;
}

/** Adam (Kingma & Ba, 2015) with bias-corrected moment estimates. */
export class Adam implements Optimizer {
  private readonly m: Tensor;
  private readonly v: Tensor;
  private steps = 0;
  private readonly beta1: number;
  private readonly beta2: number;
  private readonly epsilon: number;
  private readonly weightDecay: number;

  constructor(
    private readonly kernels: Kernels,
    parameterCount: number,
    options: AdamOptions = {},
  ) {
    this.m = kernels.allocate(parameterCount);
    this.v = kernels.allocate(parameterCount);
    this.beta1 = options.beta1 ?? 0.9;
    this.beta2 = options.beta2 ?? 0.999;
    this.epsilon = options.epsilon ?? 1e-8;
    this.weightDecay = options.weightDecay ?? 0;
  }

  async state(): Promise<OptimizerState> {
    return { steps: this.steps, buffers: [await this.kernels.read(this.m), await this.kernels.read(this.v)] };
  }

  restore(state: OptimizerState): void {
    restoreBuffers(this.kernels, 'Adam', [this.m, this.v], state.buffers);
    this.steps = state.steps;
  }

  dispose(): void {
    this.kernels.release(this.m);
    this.kernels.release(this.v);
  }

  step(parameters: readonly ParameterTensor[], learningRate: number, scales?: readonly number[]): void {
    this.steps++;
    parameters.forEach((p, i) => {
      const scale = scales?.[i] ?? 1;
      if (scale === 0) return;
      const end = p.offset + p.value.length;
      this.kernels.adamStep({
        param: p.value,
        grad: p.grad,
        m: this.m.subarray(p.offset, end),
        v: this.v.subarray(p.offset, end),
        n: p.value.length,
        learningRate: learningRate * scale,
        beta1: this.beta1,
        beta2: this.beta2,
        epsilon: this.epsilon,
        weightDecay: p.decay ? this.weightDecay : 0,
        step: this.steps,
      });
    });
  }
}

/** The optimiser a training configuration names, over `parameterCount` parameters. */
export function createOptimizer(
  kernels: Kernels,
  config: { optimizer: 'adam' | 'sgd'; momentum: number; nesterov: boolean; weightDecay: number },
  parameterCount: number,
): Optimizer {
  if (config.optimizer === 'adam') return new Adam(kernels, parameterCount, { weightDecay: config.weightDecay });
  return new Sgd(kernels, parameterCount, { momentum: config.momentum, nesterov: config.nesterov, weightDecay: config.weightDecay });
}
