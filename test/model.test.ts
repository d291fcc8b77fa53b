import assert from 'node:assert/strict';
import { test } from 'node:test';
import { jsKernels, type Kernels } from '../src/kernels/index.ts';
import { loadNativeKernels, nativeBuildPresent } from '../src/kernels/native/node.ts';
import { loadWasmKernels } from '../src/kernels/wasm/node.ts';
import { SoftmaxCrossEntropy } from '../src/layers/softmax-cross-entropy.ts';
import { cnnArchitecture } from '../src/models/cnn.ts';
import { Sequential } from '../src/models/sequential.ts';
import { mlpArchitecture } from '../src/models/mlp.ts';
import { learningRateAt } from '../src/training/schedules.ts';
import { host, Rng } from './helpers/random.ts';

const kernels = jsKernels;

test('the default MLP is 784-128-10 with 101,770 parameters', () => {
  const model = new Sequential(kernels, mlpArchitecture({ hidden: 128, dropout: 0.2, init: 'he' }));
  assert.equal(model.parameterCount, 784 * 128 + 128 + 128 * 10 + 10);
  assert.deepEqual(
    model.parameters.map((p) => [p.name, p.shape, p.decay]),
    [
      ['layers.0.weight', [784, 128], true],
      ['layers.0.bias', [128], false],
      ['layers.3.weight', [128, 10], true],
      ['layers.3.bias', [10], false],
    ],
  );
  assert.equal(model.outputSize, 10);
});

test('a model that cannot be built fails at construction, naming the layer and the shape', () => {
  assert.throws(
    () => new Sequential(kernels, { inputShape: [1, 28, 28], layers: [{ type: 'dense', units: 10 }] }),
    /layer 0 \(dense\) cannot take input of shape \[1, 28, 28\]/,
  );
  assert.throws(() => new Sequential(kernels, { inputShape: [4], layers: [{ type: 'dropout', rate: 1 }] }), /layer 0 \(dropout\).*rate must lie in \[0, 1\)/);
});

test('He and Xavier initialisation have the intended spread; biases start at zero', () => {
  const he = new Sequential(kernels, { inputShape: [800], layers: [{ type: 'dense', units: 500, init: 'he' }] });
  he.initialize(Rng.fromSeed(1));
  const w = host(he.parameters[0].value);
  const std = Math.sqrt(w.reduce((s, v) => s + v * v, 0) / w.length);
  assert.ok(Math.abs(std - Math.sqrt(2 / 800)) < 0.01 * Math.sqrt(2 / 800), `He std ${std}`);
  assert.ok(host(he.parameters[1].value).every((v) => v === 0));

  const xavier = new Sequential(kernels, { inputShape: [800], layers: [{ type: 'dense', units: 400, init: 'xavier' }] });
  xavier.initialize(Rng.fromSeed(1));
  const limit = Math.sqrt(6 / 1200);
  const wx = host(xavier.parameters[0].value);
  assert.ok(wx.every((v) => Math.abs(v) <= Math.fround(limit)));
  assert.ok(wx.reduce((max, v) => Math.max(max, v), 0) > 0.99 * limit);
});

test('batch normalisation fused with its ReLU trains to the same bits as the layers run one by one, on every backend', async () => {
  const backends: Kernels[] = [jsKernels, await loadWasmKernels({ threads: 2 })];
  if (nativeBuildPresent()) backends.push(loadNativeKernels({ threads: 2 }));
  // Normalisation after every convolution and after the feature layer, so both kinds fuse.
  const { architecture } = cnnArchitecture({ channels: [3, 4, 5, 6, 7], features: 9, convDropout: 0, featureDropout: 0, batchNorm: true });
  const batch = 5;
  for (const backend of backends) {
    const run = async (fuse: boolean) => {
      const model = new Sequential(backend, architecture, { fuse });
      model.initialize(Rng.fromSeed(3));
      const rng = Rng.fromSeed(4);
      const input = backend.allocate(batch * 784);
      backend.write(input, Float32Array.from({ length: batch * 784 }, () => rng.uniform()));
      const labels = Int32Array.from({ length: batch }, (_, i) => (i * 7) % 10);
      const loss = new SoftmaxCrossEntropy(backend, 10);
      const output = model.forward(input, batch, { training: true, rng });
      const logits = await backend.read(output.subarray(0, batch * 10));
      loss.forward(output, labels, batch, backend.allocate(batch));
      model.zeroGrad();
      loss.backward(model.outputGradient, labels, batch);
      model.backward(batch);
      return { logits, grads: await backend.read(model.grads), values: await model.readValues() };
    };
    const fused = await run(true);
    const apart = await run(false);
    assert.ok(fused.grads.some((g) => g !== 0), `${backend.description}: the step has gradients`);
    assert.deepEqual(fused, apart, backend.description);
  }
});

test('learning-rate schedules', () => {
  assert.equal(learningRateAt({ name: 'constant' }, 0.1, 7, 10), 0.1);
  assert.ok(Math.abs(learningRateAt({ name: 'step', stepEpochs: 3, gamma: 0.5 }, 0.1, 6.5, 10) - 0.025) < 1e-12);
  assert.equal(learningRateAt({ name: 'cosine' }, 0.1, 0, 10), 0.1);
  assert.ok(Math.abs(learningRateAt({ name: 'cosine' }, 0.1, 5, 10) - 0.05) < 1e-12);
  assert.ok(Math.abs(learningRateAt({ name: 'cosine' }, 0.1, 10, 10)) < 1e-12);
});

test('the generator: same seed, same stream; forks are independent; a saved state resumes the stream', () => {
  const a = Rng.fromSeed(9);
  const b = Rng.fromSeed(9);
  const drawsA = Array.from({ length: 5 }, () => a.uniform());
  assert.deepEqual(drawsA, Array.from({ length: 5 }, () => b.uniform()));
  const root = Rng.fromSeed(9);
  const first = root.fork();
  const second = root.fork();
  assert.notDeepEqual(
    Array.from({ length: 5 }, () => first.uniform()),
    Array.from({ length: 5 }, () => second.uniform()),
  );
  const c = Rng.fromSeed(3);
  c.normal();
  const saved = c.state();
  const expected = [c.normal(), c.uniform(), c.int(10)];
  const restored = Rng.fromState(saved);
  assert.deepEqual([restored.normal(), restored.uniform(), restored.int(10)], expected);
  const normals = Array.from({ length: 20000 }, () => a.normal());
  const mean = normals.reduce((s, v) => s + v, 0) / normals.length;
  const variance = normals.reduce((s, v) => s + (v - mean) ** 2, 0) / normals.length;
  assert.ok(Math.abs(mean) < 0.03 && Math.abs(variance - 1) < 0.05, `mean ${mean} variance ${variance}`);
});
