/**
 * The CIFAR-10 speed records' training tricks as options of the training job: each checked
 * against an independent computation (float64 by hand, a convolution run on the reference
 * kernels, a mirror image made by hand).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { augmentedPixelExamples, pixelExamples } from '../src/data/dataset.ts';
import { loadTrainingSet } from '../src/data/load.ts';
import { locateData } from '../src/data/locate.ts';
import { selectExamples } from '../src/data/split.ts';
import { jsKernels } from '../src/kernels/index.ts';
import { SoftmaxCrossEntropy } from '../src/layers/softmax-cross-entropy.ts';
import { evaluate } from '../src/evaluation/predict.ts';
import { cnnArchitecture } from '../src/models/cnn.ts';
import { convolutionLayers, patchCovariance, setDirac, setWhitening, symmetricEigen, whiteningFilters, WHITENING_EPSILON } from '../src/models/cnn-init.ts';
import { mlpArchitecture } from '../src/models/mlp.ts';
import { Sequential } from '../src/models/sequential.ts';
import { DEFAULT_CNN_CONFIG } from '../src/runs/configs.ts';
import { imageJobData, learningRateScales, startJob } from '../src/runs/job-core.ts';
import { loadData } from '../src/data/prepare.ts';
import { Sgd } from '../src/training/optimizers.ts';
import { host, randomArray, Rng } from './helpers/random.ts';
import { watchedFit } from './helpers/watched-fit.ts';

const location = await locateData();
const training = loadTrainingSet(location.dir).data;
const images = selectExamples(training, Array.from({ length: 300 }, (_, i) => i * 7));

test('symmetricEigen: V·diag(λ)·Vᵀ gives the matrix back, V is orthonormal, λ falls', () => {
  const rng = Rng.fromSeed(1);
  const n = 9;
  const b = randomArray(rng, n * n);
  const matrix = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) for (let k = 0; k < n; k++) matrix[i * n + j] += b[i * n + k] * b[j * n + k];
  const { values, vectors } = symmetricEigen(matrix, n);
  for (let k = 1; k < n; k++) assert.ok(values[k] <= values[k - 1]);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      let rebuilt = 0;
      let dot = 0;
      for (let k = 0; k < n; k++) {
        rebuilt += vectors[k * n + i] * values[k] * vectors[k * n + j];
        dot += vectors[i * n + k] * vectors[j * n + k];
      }
      assert.ok(Math.abs(rebuilt - matrix[i * n + j]) < 1e-9, `entry ${i},${j}`);
      assert.ok(Math.abs(dot - (i === j ? 1 : 0)) < 1e-12);
    }
  }
});

test("the whitened first convolution, run on the images, gives uncorrelated outputs of variance λ / (λ + ε)", () => {
  const weight = whiteningFilters(images, 3);
  assert.equal(weight.length, 9 * 18);
  const { values } = symmetricEigen(patchCovariance(images, 3), 9);
  // The convolution itself (the reference kernel), then the covariance of its outputs over the
  // positions whose patch lies inside the image.
  const out = new Float32Array(images.count * 28 * 28 * 18);
  const inp = Float32Array.from(images.pixels, (p) => p / 255);
  jsKernels.conv2d({ out, inp, weight, batch: images.count, height: 28, width: 28, inChannels: 1, outChannels: 18, kernelSize: 3 });
  const sum = new Float64Array(18);
  const products = new Float64Array(18 * 18);
  let count = 0;
  for (let image = 0; image < images.count; image++) {
    for (let y = 1; y < 27; y++) {
      for (let x = 1; x < 27; x++) {
        const at = ((image * 28 + y) * 28 + x) * 18;
        for (let i = 0; i < 18; i++) {
          sum[i] += out[at + i];
          for (let j = 0; j < 18; j++) products[i * 18 + j] += out[at + i] * out[at + j];
        }
        count++;
      }
    }
  }
  const covariance = (i: number, j: number) => products[i * 18 + j] / count - (sum[i] / count) * (sum[j] / count);
  for (let k = 0; k < 9; k++) {
    const expected = values[k] / (values[k] + WHITENING_EPSILON);
    assert.ok(Math.abs(covariance(2 * k, 2 * k) - expected) < 1e-3, `filter ${2 * k}: variance ${covariance(2 * k, 2 * k)}, expected ${expected}`);
    assert.ok(Math.abs(covariance(2 * k, 2 * k + 1) + expected) < 1e-3, 'each filter and its negative');
    for (let j = 0; j < k; j++) assert.ok(Math.abs(covariance(2 * k, 2 * j)) < 1e-3, `filters ${2 * k} and ${2 * j} correlate`);
  }
  // The directions of most variance come out near 1: whitened.
  assert.ok(covariance(0, 0) > 0.99);
});

test("a job's whitening comes from its own training images, not its validation images", async () => {
  const loaded = await loadData({});
  const config = { ...DEFAULT_CNN_CONFIG, whiten: true, trainLimit: 400 };
  const job = startJob({ kind: 'cnn', config }, (streams) => imageJobData(config, streams, { loaded }));
  assert.equal(job.data.type, 'images');
  if (job.data.type !== 'images') return;
  assert.equal(job.data.images.train.count, 400);
  assert.deepEqual(job.plan.whitening, whiteningFilters(job.data.images.train, 3));
  assert.notDeepEqual(job.plan.whitening, whiteningFilters(job.data.images.validation, 3));
  const plain = startJob({ kind: 'cnn', config: { ...config, whiten: false } }, (streams) => imageJobData(config, streams, { loaded }));
  assert.equal(plain.plan.whitening, undefined);
});

test('setWhitening and setDirac: a first layer of the whitening filters, later convolutions that pass their input through', () => {
  const { architecture } = cnnArchitecture({ channels: [20, 20, 24, 24, 8], features: 8, convDropout: 0, featureDropout: 0 });
  const model = new Sequential(jsKernels, architecture);
  model.initialize(Rng.fromSeed(4));
  const values = Float32Array.from(host(model.values));
  const whitening = whiteningFilters(images, 3);
  setWhitening(model, values, whitening);
  setDirac(model, values);
  model.writeValues(values);
  const [first, second, third] = convolutionLayers(model);
  const weight = host(model.parameter(first, 'weight'));
  for (let tap = 0; tap < 9; tap++) for (let f = 0; f < 18; f++) assert.equal(weight[tap * 20 + f], whitening[tap * 18 + f]);
  // Filters 18 and 19 keep their He draw.
  assert.ok(weight[18] !== 0 && weight[19] !== 0);
  const rng = Rng.fromSeed(5);
  const run = (layer: number, channels: number, filters: number) => {
    const inp = randomArray(rng, 2 * 14 * 14 * channels);
    const out = new Float32Array(2 * 14 * 14 * filters);
    jsKernels.conv2d({ out, inp, weight: model.parameter(layer, 'weight'), batch: 2, height: 14, width: 14, inChannels: channels, outChannels: filters, kernelSize: 3 });
    for (let pixel = 0; pixel < 2 * 14 * 14; pixel++) for (let f = 0; f < Math.min(channels, filters); f++) assert.equal(out[pixel * filters + f], inp[pixel * channels + f]);
    return out;
  };
  run(second, 20, 20);
  // 20 -> 24 channels: the first 20 filters pass their channel through, the last 4 keep their draw.
  const out = run(third, 20, 24);
  assert.ok(out.some((v, i) => i % 24 >= 20 && v !== 0));
});

test('alternating flips: each image mirrored in every other epoch, from a choice of its own', () => {
  const examples = augmentedPixelExamples(images, { maxShift: 0, flip: true, alternateFlip: true }, Rng.fromSeed(6));
  const order = Int32Array.from({ length: images.count }, (_, i) => i);
  const epoch = (e: number) => {
    const out = new Float32Array(images.count * 784);
    examples.gather(out, order, 0, images.count, jsKernels, e);
    return out;
  };
  const [one, two, three] = [epoch(1), epoch(2), epoch(3)];
  assert.deepEqual(three, one);
  let mirroredFirst = 0;
  for (let i = 0; i < images.count; i++) {
    const own = images.pixels.subarray(i * 784, (i + 1) * 784);
    const mirror = (image: Float32Array) => image.subarray(i * 784, (i + 1) * 784).every((v, p) => v === Math.fround(own[Math.floor(p / 28) * 28 + 27 - (p % 28)] * (1 / 255)));
    const straight = (image: Float32Array) => image.subarray(i * 784, (i + 1) * 784).every((v, p) => v === Math.fround(own[p] * (1 / 255)));
    if (mirror(one)) {
      mirroredFirst++;
      assert.ok(straight(two), `image ${i}: mirrored in epoch 1, so not in epoch 2`);
    } else {
      assert.ok(straight(one) && mirror(two), `image ${i}: straight in epoch 1, so mirrored in epoch 2`);
    }
  }
  assert.ok(mirroredFirst > 0.35 * images.count && mirroredFirst < 0.65 * images.count, `${mirroredFirst} of ${images.count} mirrored first`);
  assert.throws(() => examples.gather(new Float32Array(784), order, 0, 1, jsKernels), /epoch/);
});

test('learning-rate scales: 0 freezes a tensor, 2 doubles its SGD step; the job freezes the whitened layer and scales the shifts', () => {
  const kernels = jsKernels;
  const model = new Sequential(kernels, mlpArchitecture({ hidden: 4, dropout: 0, init: 'he' }));
  model.initialize(Rng.fromSeed(7));
  const before = Float32Array.from(host(model.values));
  host(model.grads).set(randomArray(Rng.fromSeed(8), model.parameterCount));
  const sgd = new Sgd(kernels, model.parameterCount, { momentum: 0 });
  const scales = model.parameters.map((_, i) => [0, 2, 1, 1][i]);
  sgd.step(model.parameters, 0.1, scales);
  const after = host(model.values);
  model.parameters.forEach((p, i) => {
    for (let j = p.offset; j < p.offset + p.value.length; j++) {
      const expected = before[j] - 0.1 * scales[i] * host(model.grads)[j];
      assert.ok(Math.abs(after[j] - expected) < 1e-6, `${p.name}[${j - p.offset}]`);
    }
  });

  const cnn = new Sequential(kernels, cnnArchitecture({ channels: [4, 4, 4, 4, 4], features: 4, convDropout: 0, featureDropout: 0, batchNorm: true }).architecture);
  const jobScales = learningRateScales({ kind: 'cnn', config: { ...DEFAULT_CNN_CONFIG, whiten: true, batchNormBiasLr: 8 } }, cnn);
  assert.ok(jobScales);
  cnn.parameters.forEach(({ name }, i) => assert.equal(jobScales[i], name.startsWith('layers.0.') ? 0 : name.endsWith('.beta') ? 8 : 1, name));
  assert.equal(learningRateScales({ kind: 'cnn', config: DEFAULT_CNN_CONFIG }, cnn), undefined);
});

test('Lookahead: every k steps and at each epoch end the weights become the slow ones, slow = d·slow + (1 - d)·trained with d = 0.95^k·(t/T)³', async () => {
  const k = 2;
  const batches = Math.ceil(images.count / 64);
  let slow = new Float64Array(0);
  let step = 0;
  let synced = 0;
  await watchedFit(
    images,
    { lookahead: k },
    {
      onStart: (model) => {
        slow = Float64Array.from(host(model.values));
      },
      onBatch: (fast, model) => {
        step++;
        const b = (step - 1) % batches;
        const values = host(model.values);
        if ((b + 1) % k === 0 || b === batches - 1) {
          const d = 0.95 ** k * (step / (3 * batches)) ** 3;
          for (let i = 0; i < slow.length; i++) slow[i] = d * slow[i] + (1 - d) * fast[i];
          let worst = 0;
          for (let i = 0; i < slow.length; i++) worst = Math.max(worst, Math.abs(values[i] - slow[i]));
          assert.ok(worst < 1e-5, `step ${step}: the weights differ from the slow ones by ${worst}`);
          synced++;
        } else {
          assert.deepEqual(values, fast);
        }
      },
    },
  );
  assert.equal(synced, 3 * Math.ceil(batches / k));
});

test("averaged epochs: each of the last k epochs validates the mean of the epochs' end weights so far, and the best is kept", async () => {
  const ends: Float32Array[] = [];
  const { model, result } = await watchedFit(images, { averageEpochs: 2 }, { onEpochEnd: (trained) => ends.push(Float32Array.from(host(trained.values))) });
  assert.equal(ends.length, 3);
  const mean = Float32Array.from(ends[1], (v, i) => (v + ends[2][i]) / 2);
  const loss = new SoftmaxCrossEntropy(jsKernels, 10);
  const live = Float32Array.from(host(model.values));
  model.writeValues(mean);
  const averaged = await evaluate(jsKernels, model, loss, pixelExamples(images));
  assert.equal(averaged.accuracy, result.history[2].valAccuracy);
  assert.ok(Math.abs(averaged.loss - result.history[2].valLoss) < 1e-6);
  model.writeValues(ends[1]);
  assert.equal((await evaluate(jsKernels, model, loss, pixelExamples(images))).accuracy, result.history[1].valAccuracy);
  const kept = [ends[0], ends[1], mean][result.bestEpoch - 1];
  let worst = 0;
  for (let i = 0; i < kept.length; i++) worst = Math.max(worst, Math.abs(live[i] - kept[i]));
  assert.ok(worst < 1e-6, `the kept weights differ from epoch ${result.bestEpoch}'s validated ones by ${worst}`);
});
