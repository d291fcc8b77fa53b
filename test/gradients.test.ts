import assert from 'node:assert/strict';
import { test } from 'node:test';
import { jsKernels } from '../src/kernels/index.ts';
import { buildLayer, shapeSize, type LayerSpec } from '../src/layers/index.ts';
import { SoftmaxCrossEntropy } from '../src/layers/softmax-cross-entropy.ts';
import { Sequential } from '../src/models/sequential.ts';
import type { Tensor } from '../src/kernels/index.ts';
import { host, randomArray, Rng } from './helpers/random.ts';

const kernels = jsKernels;

/**
 * Compares an analytic gradient with centred finite differences of `loss`, element by
 * element: |numeric - analytic| / max(floor, |numeric| + |analytic|). The step actually taken
 * is measured after float32 rounding of the perturbed value. `floor` is the noise level of a
 * float32 loss difference divided by the step, below which gradients compare absolutely.
 */
function gradientError(values: Float32Array, analytic: ArrayLike<number>, loss: () => number, eps = 1e-2, floor = 1e-2): number {
  let worst = 0;
  for (let i = 0; i < values.length; i++) {
    const original = values[i];
    values[i] = original + eps;
    const up = values[i];
    const lossUp = loss();
    values[i] = original - eps;
    const down = values[i];
    const lossDown = loss();
    values[i] = original;
    const numeric = (lossUp - lossDown) / (up - down);
    const error = Math.abs(numeric - analytic[i]) / Math.max(floor, Math.abs(numeric) + Math.abs(analytic[i]));
    worst = Math.max(worst, error);
  }
  return worst;
}

/** The batch's mean loss: the mean of the loss's per-example losses, in float64. */
function meanLoss(loss: SoftmaxCrossEntropy, logits: Tensor, labels: Int32Array, batch: number): number {
  const losses = new Float32Array(batch);
  loss.forward(logits, labels, batch, losses);
  return losses.reduce((sum, value) => sum + value, 0) / batch;
}

/**
 * Checks one layer: loss = Σ out ⊙ R for a fixed random R, so d(loss)/d(out) = R. Checks the
 * input gradient and every parameter gradient. Training mode with a generator restored from
 * the same state before every forward call, so dropout's mask is the same each time.
 */
function checkLayer(spec: LayerSpec, inputShape: number[], batch: number, makeInput?: (n: number) => Float32Array): void {
  const rng = Rng.fromSeed(11);
  const layer = buildLayer(spec, inputShape, kernels);
  const inSize = shapeSize(layer.inputShape) * batch;
  const outSize = shapeSize(layer.outputShape) * batch;
  const values = layer.parameters.map((p) => randomArray(rng, shapeSize(p.shape), 0.5));
  const grads = layer.parameters.map((p) => new Float32Array(shapeSize(p.shape)));
  layer.bind(values, grads);
  const input = makeInput ? makeInput(inSize) : randomArray(rng, inSize);
  // Keep inputs away from ReLU's kink so the finite differences never straddle it.
  for (let i = 0; i < input.length; i++) if (Math.abs(input[i]) < 0.05) input[i] = 0.1;
  const projection = randomArray(rng, outSize);
  const dropoutState = rng.fork().state();
  const out = new Float32Array(outSize);
  const forward = () => {
    layer.forward(out, input, batch, { training: true, rng: Rng.fromState(dropoutState) });
    let loss = 0;
    for (let i = 0; i < outSize; i++) loss += out[i] * projection[i];
    return loss;
  };
  forward();
  const dinp = new Float32Array(inSize);
  layer.backward(dinp, projection, input, out, batch);
  assert.ok(gradientError(input, dinp, forward) < 1e-2, `${spec.type}: input gradient`);
  layer.parameters.forEach((p, i) => {
    assert.ok(gradientError(values[i], grads[i], forward) < 1e-2, `${spec.type}: gradient of ${p.name}`);
  });
}

test('dense layer: gradients of input, weight and bias (He and Xavier)', () => {
  checkLayer({ type: 'dense', units: 4, init: 'he' }, [5], 3);
  checkLayer({ type: 'dense', units: 1, init: 'xavier' }, [7], 2);
});

test('ReLU: input gradient', () => {
  checkLayer({ type: 'relu' }, [6], 3);
});

test('dropout: input gradient through a fixed mask, and identity at evaluation', () => {
  checkLayer({ type: 'dropout', rate: 0.5 }, [8], 3);
  const layer = buildLayer({ type: 'dropout', rate: 0.5 }, [1000], kernels);
  const input = randomArray(Rng.fromSeed(1), 1000);
  const out = new Float32Array(1000);
  layer.forward(out, input, 1, { training: false, rng: Rng.fromSeed(2) });
  assert.deepEqual(out, input);
  layer.forward(out, input, 1, { training: true, rng: Rng.fromSeed(2) });
  const dropped = out.filter((v) => v === 0).length;
  assert.ok(dropped > 400 && dropped < 600, `${dropped} of 1000 dropped at rate 0.5`);
  out.forEach((v, i) => assert.ok(v === 0 || Math.abs(v - 2 * input[i]) < 1e-6, 'survivors are scaled by 1 / (1 - rate)'));
});

test('softmax cross-entropy, plain and label-smoothed: gradient of the loss with respect to the logits', () => {
  for (const smoothing of [0, 0.1]) {
    const rng = Rng.fromSeed(3);
    const [batch, classes] = [4, 5];
    const loss = new SoftmaxCrossEntropy(kernels, classes, smoothing);
    const logits = randomArray(rng, batch * classes, 3);
    const labels = Int32Array.from([0, 4, 2, 2]);
    meanLoss(loss, logits, labels, batch);
    const dlogits = new Float32Array(batch * classes);
    loss.backward(dlogits, labels, batch);
    assert.ok(gradientError(logits, dlogits, () => meanLoss(loss, logits, labels, batch)) < 1e-2, `smoothing ${smoothing}`);
  }
});

test('a whole MLP with dropout: every parameter gradient, through the model and loss', () => {
  const model = new Sequential(kernels, {
    inputShape: [6],
    layers: [{ type: 'dense', units: 5 }, { type: 'relu' }, { type: 'dropout', rate: 0.3 }, { type: 'dense', units: 3 }],
  });
  const rng = Rng.fromSeed(4);
  model.initialize(rng);
  const batch = 4;
  const input = randomArray(rng, batch * 6);
  const labels = Int32Array.from([0, 1, 2, 1]);
  const loss = new SoftmaxCrossEntropy(kernels, 3);
  const dropoutState = rng.fork().state();
  const lossValue = () => meanLoss(loss, model.forward(input, batch, { training: true, rng: Rng.fromState(dropoutState) }), labels, batch);
  lossValue();
  model.zeroGrad();
  loss.backward(model.outputGradient, labels, batch);
  model.backward(batch);
  const analytic = Float32Array.from(host(model.grads));
  assert.ok(gradientError(host(model.values), analytic, lossValue) < 1e-2);
});

test('conv2d: gradients of input, weight and bias (3x3, 1x1, 5x5, odd sizes)', () => {
  checkLayer({ type: 'conv2d', filters: 3, kernelSize: 3 }, [4, 5, 2], 2);
  checkLayer({ type: 'conv2d', filters: 2, kernelSize: 1 }, [3, 3, 3], 2);
  checkLayer({ type: 'conv2d', filters: 2, kernelSize: 5 }, [3, 4, 1], 1);
});

/** Distinct values 0.1 apart in shuffled order: no two elements of a pooling window are within eps. */
function wellSeparated(n: number): Float32Array {
  const values = Float32Array.from({ length: n }, (_, i) => (i - n / 2) * 0.1);
  return Rng.fromSeed(5).shuffle(values);
}

test('max pooling: input gradient, odd sizes included', () => {
  checkLayer({ type: 'maxpool2d' }, [4, 4, 2], 2, wellSeparated);
  checkLayer({ type: 'maxpool2d' }, [5, 3, 3], 2, wellSeparated);
});

test('flatten: input gradient', () => {
  checkLayer({ type: 'flatten' }, [2, 3, 2], 2);
});

test('a small CNN (conv, batch norm, ReLU, pooling, dropout, dense): every parameter gradient', () => {
  const model = new Sequential(kernels, {
    inputShape: [6, 6, 1],
    layers: [
      { type: 'conv2d', filters: 3 },
      { type: 'batchnorm' },
      { type: 'relu' },
      { type: 'maxpool2d' },
      { type: 'conv2d', filters: 2 },
      { type: 'relu' },
      { type: 'flatten' },
      { type: 'dropout', rate: 0.25 },
      { type: 'dense', units: 4 },
    ],
  });
  const rng = Rng.fromSeed(6);
  model.initialize(rng);
  const batch = 2;
  const input = randomArray(rng, batch * 36);
  const labels = Int32Array.from([3, 1]);
  const loss = new SoftmaxCrossEntropy(kernels, 4);
  const dropoutState = rng.fork().state();
  const lossValue = () => meanLoss(loss, model.forward(input, batch, { training: true, rng: Rng.fromState(dropoutState) }), labels, batch);
  lossValue();
  model.zeroGrad();
  loss.backward(model.outputGradient, labels, batch);
  model.backward(batch);
  const analytic = Float32Array.from(host(model.grads));
  // A smaller step: ReLU and max pooling are piecewise linear, so a large one crosses kinks. With
  // it, a float32 loss difference is noise below about 3e-4 / step (the conv bias before batch
  // norm has a true gradient of 0 and reads -2.7e-4), hence the floor of 0.05.
  assert.ok(gradientError(host(model.values), analytic, lossValue, 1e-3, 5e-2) < 2e-2);
});

test('batch normalisation: gradients of input, gamma and beta, on vectors and on images', () => {
  checkLayer({ type: 'batchnorm' }, [5], 4);
  checkLayer({ type: 'batchnorm' }, [3, 2, 3], 2);
});

test('batch normalisation keeps running statistics and uses them in evaluation', () => {
  const layer = buildLayer({ type: 'batchnorm', momentum: 0.1 }, [2], kernels);
  const values = layer.parameters.map((p) => new Float32Array(shapeSize(p.shape)).fill(p.init === 'ones' ? 1 : 0));
  layer.bind(values, layer.parameters.map((p) => new Float32Array(shapeSize(p.shape))));
  const input = Float32Array.from([1, 10, 3, 20, 5, 30]); // channel 0: 1, 3, 5; channel 1: 10, 20, 30
  const out = new Float32Array(6);
  layer.forward(out, input, 3, { training: true, rng: Rng.fromSeed(1) });
  // Normalised with the batch's statistics: mean 0, variance 1 (up to eps) per channel.
  assert.ok(Math.abs(out[0] + out[2] + out[4]) < 1e-6 && Math.abs(out[0] * out[0] + out[2] * out[2] + out[4] * out[4] - 3) < 1e-4);
  const [, , runningMean, runningVar] = values;
  assert.ok(Math.abs(runningMean[0] - 0.3) < 1e-6 && Math.abs(runningMean[1] - 2) < 1e-6);
  // Unbiased variances 4 and 100, blended into the initial 1 with momentum 0.1.
  assert.ok(Math.abs(runningVar[0] - (0.9 + 0.4)) < 1e-5 && Math.abs(runningVar[1] - (0.9 + 10)) < 1e-4);
  layer.forward(out, input, 3, { training: false, rng: Rng.fromSeed(1) });
  assert.ok(Math.abs(out[0] - (1 - 0.3) / Math.sqrt(1.3 + 1e-5)) < 1e-5);
});

test('the gradient check fails on a wrong gradient', () => {
  // Guards the checker itself: a gradient off by 10% must not pass.
  const values = Float32Array.from([0.3, -0.7, 1.1]);
  const loss = () => values.reduce((sum, v) => sum + v * v * v, 0);
  const right = [...values].map((v) => 3 * v * v);
  assert.ok(gradientError(values, right, loss) < 1e-2);
  assert.ok(gradientError(values, right.map((g) => g * 1.1), loss) > 1e-2);
});
