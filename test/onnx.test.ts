import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import onnxProto, { type onnx } from 'onnx-proto';
import { InferenceSession, Tensor } from 'onnxruntime-node';
import { NUM_CLASSES } from '../src/data/idx.ts';
import { loadTestSet, type LabelledImages } from '../src/data/load.ts';
import { CLASS_NAMES } from '../src/data/manifest.ts';
import { argmax } from '../src/evaluation/predict.ts';
import { exportOnnx, ONNX_OPSET } from '../src/export/onnx.ts';
import { compareClassifiers, loadOnnxClassifiers, onnxClassifier } from '../src/export/onnx-runtime.ts';
import { ourClassifier } from '../src/inference/classifier.ts';
import { loadKernels, type Kernels } from '../src/kernels/index.ts';
import { runPipeline } from '../src/runs/pipeline.ts';
import { trainCnn } from '../src/runs/train.ts';
import { isOneLineError, runCli } from './helpers/cli.ts';
import { REAL_DATA_DIR, tempDir } from './helpers/idx-files.ts';

/** Reads back an ONNX model's bytes (for checks: its ops, opset, inputs and metadata). */
const decodeOnnx = (bytes: Uint8Array): onnx.ModelProto => onnxProto.onnx.ModelProto.decode(bytes);

// A tiny pipeline (seconds): the CNN with batch normalisation and dropout, so every layer type
// the exporter converts is in a graph; features of 8 channels of 3x3 flattened, whose order
// differs between our NHWC and ONNX's NCHW.
const overrides = {
  mlp: { trainLimit: 1000, epochs: 1, hidden: 16 },
  cnn: { trainLimit: 2000, epochs: 2, channels: [4, 4, 8, 8, 8], features: 16, convDropout: 0.1, featureDropout: 0.1, batchNorm: true, learningRate: 0.003 },
  featuresMlp: { epochs: 5, hidden: 32, dropout: 0, learningRate: 0.01 },
};
const MODELS = ['mlp', 'cnn', 'cnn-features-mlp'] as const;
/** The ops the graphs may use: standard ONNX, nothing custom (Slice, Concat, Reshape and ReduceMean: test-time flipping, the CNN's default). */
const STANDARD_OPS = new Set(['Conv', 'MaxPool', 'Relu', 'Gemm', 'Flatten', 'Softmax', 'BatchNormalization', 'Sub', 'Mul', 'Slice', 'Concat', 'Reshape', 'ReduceMean']);

const pipelineDir = join(tempDir(), 'pipeline');
let kernels: Kernels;
let images: LabelledImages;

before(async () => {
  await runPipeline({ seed: 3, overrides }, { outDir: pipelineDir });
  kernels = await loadKernels('auto');
  images = loadTestSet(REAL_DATA_DIR).data;
});

function maxAbsDifference(p: Float32Array, q: Float32Array, count: number): number {
  let max = 0;
  for (let i = 0; i < count * NUM_CLASSES; i++) max = Math.max(max, Math.abs(p[i] - q[i]));
  return max;
}

describe('each model of a pipeline, exported to ONNX', () => {
  for (const name of MODELS) {
    test(`${name}: a standard opset-${ONNX_OPSET} graph from images [N, 1, 28, 28] to probabilities [N, 10], with its metadata`, () => {
      const exported = exportOnnx(join(pipelineDir, name));
      const model = decodeOnnx(exported.bytes);
      const graph = model.graph as onnx.GraphProto;
      assert.deepEqual(
        model.opsetImport.map((o) => [o.domain, Number(o.version)]),
        [['', ONNX_OPSET]],
      );
      for (const node of graph.node) assert.ok(STANDARD_OPS.has(node.opType ?? ''), `${node.opType} is one of the standard ops expected`);
      const dims = (value: onnx.IValueInfoProto) => value.type!.tensorType!.shape!.dim!.map((d) => d.dimParam || Number(d.dimValue));
      assert.deepEqual(
        graph.input.map((i) => i.name),
        ['images'],
      );
      assert.deepEqual(dims(graph.input[0]), ['N', 1, 28, 28]);
      assert.deepEqual(dims(graph.output[0]), ['N', 10]);
      assert.equal(graph.output[0].name, 'probabilities');
      assert.equal(model.producerName, 'fashion-mnist-ts');
      const metadata = Object.fromEntries(model.metadataProps.map((p) => [p.key, p.value]));
      assert.deepEqual(JSON.parse(metadata.class_names), [...CLASS_NAMES]);
      assert.equal(metadata.kind, name);
      assert.equal(JSON.parse(metadata.training_config).model, name);
      // The chain is one graph: the features model holds the CNN's convolutions and the MLP.
      if (name === 'cnn-features-mlp') {
        assert.ok(exported.ops.includes('Conv') && exported.ops.includes('Sub'), exported.ops.join(' '));
        // The CNN flips at test time, so the features are averaged over each image and its mirror image.
        assert.ok(exported.ops.includes('ReduceMean'), exported.ops.join(' '));
        assert.ok(JSON.parse(metadata.extractor_training_config).config.batchNorm);
      }
      if (name === 'cnn') assert.ok(exported.ops.includes('BatchNormalization'));
    });

    test(`${name}: ONNX Runtime gives our probabilities within 1e-4 and our class on all 10,000 test images`, async () => {
      const dir = join(pipelineDir, name);
      const ours = await (await ourClassifier(dir, kernels)).classify(images.pixels, images.count);
      const runtime = await onnxClassifier(exportOnnx(dir), name, { threads: 2 });
      const theirs = await runtime.classify(images.pixels, images.count);
      await runtime.close();
      assert.ok(maxAbsDifference(ours, theirs, 1000) < 1e-4, `first 1,000 images: largest difference ${maxAbsDifference(ours, theirs, 1000)}`);
      const largest = maxAbsDifference(ours, theirs, images.count);
      assert.ok(largest < 1e-4, `all images: largest difference ${largest}`);
      // The same class on every image, except where our two most probable classes are within
      // the runtimes' rounding of each other (a tie that float32 decides either way).
      const ties: number[] = [];
      for (let i = 0; i < images.count; i++) {
        const a = argmax(ours, i * NUM_CLASSES, NUM_CLASSES);
        const b = argmax(theirs, i * NUM_CLASSES, NUM_CLASSES);
        if (a === b) continue;
        const margin = ours[i * NUM_CLASSES + a] - ours[i * NUM_CLASSES + b];
        assert.ok(margin <= 2 * largest, `image ${i}: ours class ${a}, onnxruntime ${b}, our probabilities ${margin} apart`);
        ties.push(i);
      }
      if (ties.length > 0) console.log(`${name}: classes differ only on ties within rounding, images ${ties.join(', ')}`);
    });
  }

  test('loadOnnxClassifiers gives a pipeline folder three ONNX Runtime classifiers, as loadClassifiers gives ours', async () => {
    const classifiers = await loadOnnxClassifiers(pipelineDir);
    assert.deepEqual(
      classifiers.map((c) => [c.name, c.kind]),
      [
        ['mlp', 'mlp'],
        ['cnn', 'cnn'],
        ['cnn-features-mlp', 'cnn-features-mlp'],
      ],
    );
    for (const classifier of classifiers) {
      assert.match(classifier.runtime, /^onnxruntime \d+\.\d+\.\d+ \(CPU, 1 thread\)$/);
      assert.deepEqual(classifier.classNames, [...CLASS_NAMES]);
      const probabilities = await classifier.classify(images.pixels.subarray(0, 3 * 784), 3);
      assert.equal(probabilities.length, 30);
      for (let i = 0; i < 3; i++) {
        const sum = probabilities.subarray(i * 10, i * 10 + 10).reduce((a, b) => a + b, 0);
        assert.ok(Math.abs(sum - 1) < 1e-5, `row ${i} sums to ${sum}`);
      }
    }
  });
});

describe('fmnist export', () => {
  test('writes a file that ONNX Runtime loads from disk and runs as the in-memory export does', async () => {
    const file = join(tempDir(), 'cnn.onnx');
    const result = runCli(['export', '--model', join(pipelineDir, 'cnn'), '--out', file]);
    assert.equal(result.status, 0, result.stderr);
    assert.match(result.stdout, /^cnn: .*cnn\.onnx \(\d+\.\d\d MB, opset 17, \d+ nodes: (Slice, Concat, )?Conv, /);
    assert.deepEqual(new Uint8Array(readFileSync(file)), exportOnnx(join(pipelineDir, 'cnn')).bytes);
    const session = await InferenceSession.create(file);
    const input = new Tensor('float32', Float32Array.from(images.pixels.subarray(0, 2 * 784), (v) => v / 255), [2, 1, 28, 28]);
    const output = (await session.run({ images: input })).probabilities;
    assert.deepEqual(output.dims, [2, 10]);
    await session.release();
  });

  test('a pipeline folder: each model gets model.onnx in its folder', () => {
    const result = runCli(['export', '--model', pipelineDir]);
    assert.equal(result.status, 0, result.stderr);
    for (const name of MODELS) assert.ok(existsSync(join(pipelineDir, name, 'model.onnx')), `${name}/model.onnx`);
    assert.equal(result.stdout.trim().split('\n').length, 3);
  });

  test('--check runs each model in ONNX Runtime on the test set beside ours', () => {
    const result = runCli(['export', '--model', join(pipelineDir, 'mlp'), '--out', join(tempDir(), 'mlp.onnx'), '--check']);
    assert.equal(result.status, 0, result.stderr);
    const [line] = result.stdout.split('\n').filter((l) => l.includes('onnxruntime test accuracy'));
    const match = /onnxruntime test accuracy ([\d.]+)% \(ours ([\d.]+)%, recorded at training ([\d.]+)%\); same class on (\d+) of 10000 images/.exec(line);
    assert.ok(match, result.stdout);
    assert.equal(match[1], match[2]);
    assert.equal(match[1], match[3]);
  });

  test('bad input gets a one-line error: a folder that is not a model, a missing folder, an unknown format, --out with a pipeline', () => {
    const empty = tempDir();
    mkdirSync(join(empty, 'sub'));
    const cases: [string[], number, RegExp][] = [
      [['export', '--model', empty], 1, /holds no model/],
      [['export', '--model', join(empty, 'missing')], 1, /holds no model/],
      [['export', '--model', join(pipelineDir, 'mlp'), '--format', 'tflite'], 2, /tflite.*onnx/],
      [['export', '--model', pipelineDir, '--out', join(empty, 'x.onnx')], 1, /pipeline with 3 models; leave out --out/],
    ];
    for (const [args, status, message] of cases) {
      const result = runCli(args);
      assert.equal(result.status, status, `${args.join(' ')}: ${result.stderr}`);
      assert.ok(isOneLineError(result.stderr), result.stderr);
      assert.match(result.stderr, message);
    }
    assert.ok(!existsSync(join(empty, 'x.onnx')));
  });
});

test('a CNN trained with test-time flipping exports as one graph that averages each image and its mirror image, as ours does', async () => {
  const dir = join(tempDir(), 'flip-cnn');
  await trainCnn({ trainLimit: 1000, epochs: 1, channels: [4, 4, 8, 8, 8], features: 16, testFlip: true, augmentFlip: true }, { outDir: dir, kernels });
  const exported = exportOnnx(dir);
  assert.ok(['Slice', 'Concat', 'Reshape', 'ReduceMean'].every((op) => exported.ops.includes(op)), exported.ops.join(', '));
  const [onnxModel] = await loadOnnxClassifiers(dir);
  const comparison = await compareClassifiers(await ourClassifier(dir, kernels), onnxModel, { count: 1000, pixels: images.pixels.subarray(0, 1000 * 784), labels: images.labels.subarray(0, 1000) });
  assert.ok(comparison.maxDifference < 1e-4, `largest probability difference ${comparison.maxDifference}`);
});
