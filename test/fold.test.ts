import assert from 'node:assert/strict';
import { test } from 'node:test';
import { jsKernels } from '../src/kernels/index.ts';
import { cnnArchitecture } from '../src/models/cnn.ts';
import { foldBatchNorm } from '../src/models/fold.ts';
import { Sequential } from '../src/models/sequential.ts';
import { host, Rng } from './helpers/random.ts';

const kernels = jsKernels;

test('batch normalisation folded into the layers before it gives the unfolded model\'s outputs and features', async () => {
  const { architecture, featureLayer } = cnnArchitecture({ channels: [4, 4, 8, 8, 8], features: 16, convDropout: 0.1, featureDropout: 0.2, batchNorm: true });
  const model = new Sequential(kernels, architecture);
  const rng = Rng.fromSeed(5);
  model.initialize(rng.fork());
  // Statistics and affine parameters far from their initial 0s and 1s, so that folding them wrongly shows.
  for (const parameter of model.parameters) {
    const name = parameter.name.split('.').pop();
    const value = host(parameter.value);
    for (let i = 0; i < value.length; i++) {
      if (name === 'gamma') value[i] = 0.5 + rng.uniform();
      if (name === 'beta' || name === 'runningMean') value[i] = rng.uniform() - 0.5;
      if (name === 'runningVar') value[i] = 0.2 + 2 * rng.uniform();
    }
  }
  const folded = await foldBatchNorm(model, kernels);
  assert.equal(folded.model.architecture.layers.filter((layer) => layer.type === 'batchnorm').length, 0, 'every normalisation follows a convolution or a dense layer, so none is left');
  assert.equal(folded.model.layers.length, model.layers.length - 6);

  const batch = 3;
  const images = Float32Array.from({ length: batch * 784 }, () => rng.uniform());
  const context = { training: false, rng: Rng.fromSeed(0) };
  const close = (actual: Float32Array, expected: Float32Array, what: string) => {
    assert.equal(actual.length, expected.length, what);
    for (let i = 0; i < expected.length; i++) assert.ok(Math.abs(actual[i] - expected[i]) <= 1e-4 * (1 + Math.abs(expected[i])), `${what}[${i}]: ${actual[i]} against ${expected[i]}`);
  };
  close(host(folded.model.forward(images, batch, context)).slice(0, batch * 10), host(model.forward(images, batch, context)).slice(0, batch * 10), 'logits');
  const features = host(model.forwardTo(images, batch, context, featureLayer)).slice(0, batch * 16);
  close(host(folded.model.forwardTo(images, batch, context, folded.layerIndex(featureLayer))).slice(0, batch * 16), features, 'features');
  assert.ok(features.some((value) => value > 0), 'the features are not all zero');
});
