/**
 * What the web app takes from the library instead of declaring it again, checked in Node: the
 * option table's command (read back by the CLI's own parser), a learning rate changed while fit
 * runs, the report's choice of a confusion cell's images, the network's insides, and the model
 * folders among dropped files.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Command } from 'commander';
import { addConfigOptions, configFromFlags } from '../src/cli/parse.ts';
import { pixelExamples } from '../src/data/dataset.ts';
import { CLASS_NAMES } from '../src/data/manifest.ts';
import { loadTrainingSet } from '../src/data/load.ts';
import { locateData } from '../src/data/locate.ts';
import { selectExamples } from '../src/data/split.ts';
import { firstLayerFilters, layerOutputs, weightHistograms } from '../src/inference/inside.ts';
import { jsKernels } from '../src/kernels/index.ts';
import { SoftmaxCrossEntropy } from '../src/layers/softmax-cross-entropy.ts';
import { cnnArchitecture } from '../src/models/cnn.ts';
import { foldBatchNorm } from '../src/models/fold.ts';
import { encodeModel } from '../src/models/model-format.ts';
import { mlpArchitecture } from '../src/models/mlp.ts';
import { Sequential } from '../src/models/sequential.ts';
import { Rng } from '../src/random/rng.ts';
import { cellIndices } from '../src/reports/selection.ts';
import { DEFAULT_CNN_CONFIG, DEFAULT_MLP_CONFIG, type CnnConfig, type MlpConfig } from '../src/runs/configs.ts';
import { CNN_CONFIG_OPTIONS, commandFlags, MLP_CONFIG_OPTIONS, type OptionTable } from '../src/runs/options.ts';
import { jsonFileText, RUN_FILES } from '../src/runs/run-files.ts';
import { fit, type EpochRecord, type FitState, type TrainingControl } from '../src/training/fit.ts';
import { Adam } from '../src/training/optimizers.ts';
import { joinPath, modelFolders } from '../web/model-files.ts';
import { host } from './helpers/random.ts';

/** The configuration the CLI's parser gives for `flags` (split as a shell splits them), on `defaults`. */
function parsed<C>(table: OptionTable<C>, defaults: Readonly<C>, flags: string[]): C {
  const command = addConfigOptions(new Command().exitOverride(), table, defaults);
  command.parse(flags.flatMap((flag) => flag.split(' ')), { from: 'user' });
  return configFromFlags(table, command.opts());
}

test('the command built from the option table gives back the configuration, read by the CLI\'s own parser', () => {
  const mlp: MlpConfig = { ...DEFAULT_MLP_CONFIG, epochs: 3, learningRate: 0.0025, trainLimit: 5000, seed: 9, backend: 'wasm', threads: 1, dropout: 0, init: 'xavier', nesterov: true };
  assert.deepEqual(parsed(MLP_CONFIG_OPTIONS, DEFAULT_MLP_CONFIG, commandFlags(MLP_CONFIG_OPTIONS, mlp, DEFAULT_MLP_CONFIG)), mlp);
  // Switches on by default turned off (--no-test-flip), a list, a nullable left null.
  const cnn: CnnConfig = { ...DEFAULT_CNN_CONFIG, channels: [4, 4, 8, 8, 8], testFlip: false, batchNorm: false, augmentErase: 0.25, trainLimit: null, threads: null, backend: 'webgpu' };
  const flags = commandFlags(CNN_CONFIG_OPTIONS, cnn, DEFAULT_CNN_CONFIG, ['seed']);
  assert.ok(flags.includes('--no-test-flip') && flags.includes('--no-batch-norm') && flags.includes('--channels 4,4,8,8,8') && flags.includes('--seed 42'), flags.join(' '));
  assert.ok(!flags.some((flag) => flag.startsWith('--threads') || flag.startsWith('--train-limit')), flags.join(' '));
  assert.deepEqual(parsed(CNN_CONFIG_OPTIONS, DEFAULT_CNN_CONFIG, flags), cnn);
});

const location = await locateData();
const images = selectExamples(loadTrainingSet(location.dir).data, Array.from({ length: 256 }, (_, i) => i));

/** One epoch of a small MLP on 256 images, batch 32, from seed 5; `learningRate` its peak, `control` what changes while it runs. */
async function train(learningRate: number, control?: TrainingControl, onBatch?: (batch: number) => void, checkpoint?: { state: FitState | null }) {
  const model = new Sequential(jsKernels, mlpArchitecture({ hidden: 16, dropout: 0, init: 'he' }));
  const rng = Rng.fromSeed(5);
  model.initialize(rng.fork());
  const result = await fit({
    kernels: jsKernels,
    model,
    loss: new SoftmaxCrossEntropy(jsKernels, 10),
    optimizer: new Adam(jsKernels, model.parameterCount),
    train: pixelExamples(images),
    validation: pixelExamples(images),
    epochs: 2,
    stopAfterEpoch: checkpoint && checkpoint.state === null ? 1 : undefined,
    batchSize: 32,
    learningRate,
    schedule: { name: 'cosine' },
    patience: 0,
    shuffleRng: rng.fork(),
    dropoutRng: rng.fork(),
    control,
    checkpoint: checkpoint && { load: () => checkpoint.state, save: (state) => (checkpoint.state = structuredClone(state)) },
    onProgress: (event) => {
      if (event.type === 'batch') onBatch?.(event.batch);
    },
  });
  return { values: Float32Array.from(host(model.values)), history: result.history };
}

test('a learning rate changed while fit runs applies from the next step, is recorded in the epoch, and a resumed run goes on with it', async () => {
  // Asked for before the first step: the run is the one started with that rate, recorded at batch 1.
  const from = await train(0.01, { learningRate: 0.002 });
  const plain = await train(0.002);
  assert.deepEqual(from.values, plain.values);
  assert.deepEqual(from.history[0].learningRateChanges, [{ batch: 1, at: 0, peakLearningRate: 0.002 }]);
  assert.equal(plain.history[0].learningRateChanges, undefined, 'no change, no record');

  // Asked for after batch 3's step: batch 4's step is the first with it.
  const control: TrainingControl = {};
  const heard: { batch: number; epoch: number }[] = [];
  control.onChange = (change) => heard.push({ batch: change.batch, epoch: change.epoch });
  const changed = await train(0.01, control, (batch) => {
    if (batch === 3) control.learningRate = 0.001;
  });
  assert.deepEqual(changed.history[0].learningRateChanges, [{ batch: 4, at: 3 / 8, peakLearningRate: 0.001 }]);
  assert.deepEqual(heard, [{ batch: 4, epoch: 1 }]);
  assert.equal(changed.history[1].learningRateChanges, undefined);
  assert.notDeepEqual(changed.values, (await train(0.01)).values);

  // Stopped after the first epoch and resumed without being told again: the second epoch runs at the changed rate.
  const saved: { state: FitState | null } = { state: null };
  const again: TrainingControl = {};
  await train(0.01, again, (batch) => {
    if (batch === 3) again.learningRate = 0.001;
  }, saved);
  const resumed = await train(0.01, undefined, undefined, saved);
  assert.deepEqual(resumed.values, changed.values);
  assert.deepEqual(resumed.history.map((record: EpochRecord) => record.learningRateChanges), changed.history.map((record) => record.learningRateChanges));
});

test('a confusion cell\'s images: those of its true class predicted as its class, the most confident first', () => {
  const labels = Uint8Array.of(6, 6, 0, 6, 6);
  const probabilities = new Float32Array(5 * 10);
  const row = (i: number, predicted: number, p: number) => {
    probabilities.fill((1 - p) / 9, i * 10, i * 10 + 10);
    probabilities[i * 10 + predicted] = p;
  };
  row(0, 0, 0.5);
  row(1, 6, 0.9);
  row(2, 0, 0.99);
  row(3, 0, 0.8);
  row(4, 0, 0.5);
  assert.deepEqual(cellIndices(probabilities, labels, 6, 0), [3, 0, 4]);
  assert.deepEqual(cellIndices(probabilities, labels, 0, 0), [2]);
  assert.deepEqual(cellIndices(probabilities, labels, 0, 6), []);
});

test('inside a CNN: each layer\'s output for one image (the last the logits), the first convolution\'s filters in its weight\'s layout, and every weight in its histogram', async () => {
  const { architecture } = cnnArchitecture({ channels: [4, 4, 8, 8, 8], features: 16, convDropout: 0, featureDropout: 0, batchNorm: true });
  const model = new Sequential(jsKernels, architecture);
  model.initialize(Rng.fromSeed(7));
  const one = pixelExamples({ count: 1, pixels: images.pixels.subarray(0, 784), labels: images.labels.subarray(0, 1) });
  const layers = await layerOutputs(jsKernels, model, one);
  assert.equal(layers.length, model.layers.length);
  assert.deepEqual(layers[0].shape, [28, 28, 4]);
  assert.deepEqual(layers.at(-1)!.shape, [10]);
  const input = new Float32Array(784);
  one.gather(input, Int32Array.of(0), 0, 1, jsKernels);
  const logits = model.forward(input, 1, { training: false, rng: Rng.fromSeed(0) }) as Float32Array;
  assert.deepEqual(Array.from(layers.at(-1)!.values), Array.from(logits.subarray(0, 10)));
  // Prepared to classify, the model runs each convolution with its ReLU as one kernel; looking
  // inside still sees each convolution's own output.
  const folded = (await foldBatchNorm(model, jsKernels)).model;
  assert.ok(folded.layers.some((layer, i) => layer.spec.type === 'conv2d' && folded.layers[i + 1]?.spec.type === 'relu'), 'a convolution right before a ReLU');
  const unprepared = await layerOutputs(jsKernels, folded, one);
  const ready = (await foldBatchNorm(model, jsKernels)).model; // buffers of its own, written by nothing before
  ready.prepareInference();
  const prepared = await layerOutputs(jsKernels, ready, one);
  for (const [index, layer] of unprepared.entries()) assert.deepEqual(Array.from(prepared[index].values), Array.from(layer.values), `layer ${index} (${layer.type}) prepared`);
  assert.ok(unprepared[0].values.some((value) => value < 0), 'the first convolution\'s own output, before its ReLU, has negative values');

  const values = Float32Array.from(host(model.values));
  const filters = firstLayerFilters(model, values)!;
  assert.equal(filters.side, 3);
  assert.equal(filters.filters.length, 4);
  const weight = model.parameterIn(values, 0, 'weight'); // [3, 3, 1, 4]
  assert.equal(filters.filters[2][1 * 3 + 2], weight[(1 * 3 + 2) * 4 + 2], 'filter 2, row 1, column 2');
  const histograms = weightHistograms(model, values);
  assert.deepEqual(histograms.map((h) => h.type), ['conv2d', 'conv2d', 'conv2d', 'conv2d', 'conv2d', 'dense', 'dense']);
  for (const h of histograms) assert.equal(h.counts.reduce((a, b) => a + b, 0), h.count);
  assert.equal(histograms[0].count, 3 * 3 * 1 * 4);
});

test('the model folders among dropped files: a pipeline\'s three, the MLP on features with the CNN it names; a model without its weights is named', async () => {
  const file = async (kind: string, input: object, model: Sequential) => {
    const { description, weights } = await encodeModel(model, { kind, input: input as never, classNames: CLASS_NAMES });
    return [new TextEncoder().encode(jsonFileText(description)), weights] as const;
  };
  const mlp = new Sequential(jsKernels, mlpArchitecture({ hidden: 4, dropout: 0, init: 'he' }));
  const [mlpJson, mlpWeights] = await file('mlp', { type: 'pixels', scale: 1 / 255 }, mlp);
  const features = new Sequential(jsKernels, mlpArchitecture({ hidden: 4, dropout: 0, init: 'he' }, 16));
  const [featuresJson, featuresWeights] = await file('cnn-features-mlp', { type: 'cnn-features', extractor: '../cnn', featureLayer: 3, flipAverage: false, mean: Array(16).fill(0), std: Array(16).fill(1) }, features);
  const dropped = new Map<string, Uint8Array>([
    ['cnn/model.json', mlpJson],
    ['cnn/model.safetensors', mlpWeights],
    ['cnn/history.json', new TextEncoder().encode('[]')],
    ['cnn/notes.txt', new Uint8Array(1)],
    ['cnn-features-mlp/model.json', featuresJson],
    ['cnn-features-mlp/model.safetensors', featuresWeights],
    ['mlp/model.json', mlpJson],
  ]);
  const { folders, problems } = modelFolders(dropped);
  assert.deepEqual(folders.map((folder) => folder.path), ['cnn', 'cnn-features-mlp']);
  assert.deepEqual([...folders[0].files.keys()].sort(), [RUN_FILES.history, RUN_FILES.model, RUN_FILES.weights].sort());
  assert.equal(folders[1].extractor, folders[0].files, 'the CNN its model.json names');
  assert.deepEqual(problems, ['mlp/ has model.json but no model.safetensors; drop both files of the model\'s folder.']);
  assert.match(modelFolders(new Map([['cnn-features-mlp/model.json', featuresJson], ['cnn-features-mlp/model.safetensors', featuresWeights]])).problems[0], /features of the CNN in \.\.\/cnn; drop the folder that holds both/);
  assert.match(modelFolders(new Map([['notes.txt', new Uint8Array(1)]])).problems[0], /^No model\.json among the dropped files/);
  assert.equal(joinPath('runs/pipeline/cnn-features-mlp', '../cnn'), 'runs/pipeline/cnn');
  assert.equal(joinPath('', './cnn'), 'cnn');
});
