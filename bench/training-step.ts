// What the step benchmarks share: one training step on a fixed batch, and the median of rounds.
import type { Kernels, Tensor } from '../src/kernels/index.ts';
import type { SoftmaxCrossEntropy } from '../src/layers/softmax-cross-entropy.ts';
import type { Architecture, Sequential } from '../src/models/sequential.ts';
import type { Rng } from '../src/random/rng.ts';
import type { Adam } from '../src/training/optimizers.ts';

/**
 * The classes a step is built from. bench/run.ts passes this checkout's; bench/compare-builds.ts
 * passes each build's own, so that a build's layers run its own kernels.
 */
export interface StepModules {
  Sequential: typeof Sequential;
  SoftmaxCrossEntropy: typeof SoftmaxCrossEntropy;
  Adam: typeof Adam;
  Rng: typeof Rng;
}

/** A training step to call again and again, with what a benchmark on a GPU needs around it. */
export interface FixedBatchStep {
  (): void;
  /** Resolves once the steps called so far have run (a GPU records them and returns at once). */
  finished(): Promise<unknown>;
  /** Gives the network's and the step's buffers back to the kernels. */
  dispose(): void;
}

/**
 * One training step (forward, backward, Adam) of a freshly initialised network on a fixed batch
 * of `batch` synthetic images: what the kernels alone cost, without data loading, augmentation
 * or validation. Every call trains on the same batch.
 */
export function fixedBatchStep(modules: StepModules, kernels: Kernels, architecture: Architecture, batch: number): FixedBatchStep {
  const { Sequential, SoftmaxCrossEntropy, Adam, Rng } = modules;
  const rng = Rng.fromSeed(4);
  const model = new Sequential(kernels, architecture);
  model.initialize(rng.fork());
  const loss = new SoftmaxCrossEntropy(kernels, 10);
  const optimizer = new Adam(kernels, model.parameterCount);
  const input = kernels.allocate(batch * 784);
  const pixels = Float32Array.from({ length: batch * 784 }, (_, i) => Math.abs(Math.sin(i * 0.1)));
  const losses = kernels.allocate(batch);
  const labels = Int32Array.from({ length: batch }, (_, i) => i % 10);
  const context = { training: true, rng: rng.fork() };
  // Builds before the tensor interface (compare-builds.ts runs them too) wrote into their
  // buffers in place, took byte labels and returned the batch's loss.
  const before = typeof kernels.write !== 'function';
  if (before) (input as Float32Array).set(pixels);
  else kernels.write(input, pixels);
  const forwardLoss = before
    ? (logits: Tensor) => (loss.forward as unknown as (logits: Tensor, labels: Uint8Array, batch: number) => number)(logits, Uint8Array.from(labels), batch)
    : (logits: Tensor) => loss.forward(logits, labels, batch, losses);
  const backwardLabels = before ? (Uint8Array.from(labels) as unknown as Int32Array) : labels;
  const step = () => {
    const logits = model.forward(input, batch, context);
    forwardLoss(logits);
    model.zeroGrad();
    loss.backward(model.outputGradient, backwardLabels, batch);
    model.backward(batch);
    optimizer.step(model.parameters, 0.001);
  };
  return Object.assign(step, {
    // Builds before the tensor interface computed in place: their steps are done when they return.
    finished: () => (before ? Promise.resolve() : kernels.read(losses.subarray(0, 1))),
    dispose() {
      for (const tensor of [input, losses]) kernels.release(tensor);
      model.dispose();
      loss.dispose();
      optimizer.dispose();
    },
  });
}

/** The middle value (the upper one of an even count). */
export const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

/**
 * The kernels with every call timed on the calling thread: milliseconds per kernel name are
 * added to `spent`.
 */
export function timedKernels(kernels: Kernels, spent: Map<string, number>): Kernels {
  return Object.fromEntries(
    Object.entries(kernels).map(([name, value]) => {
      if (typeof value !== 'function' || name === 'allocate') return [name, value];
      return [
        name,
        (...args: unknown[]) => {
          const started = performance.now();
          const result = (value as (...a: unknown[]) => unknown).apply(kernels, args);
          spent.set(name, (spent.get(name) ?? 0) + performance.now() - started);
          return result;
        },
      ];
    }),
  ) as unknown as Kernels;
}
