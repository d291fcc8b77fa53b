import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, InjectOptions } from 'fastify';
import { loadTestSet } from '../src/data/load.ts';
import { loadClassifiers } from '../src/inference/classifier.ts';
import { encodeNpy } from '../src/io/npy.ts';
import { loadKernels } from '../src/kernels/index.ts';
import { Rng } from '../src/random/rng.ts';
import { evaluateSavedModel } from '../src/runs/evaluate.ts';
import { runPipeline } from '../src/runs/pipeline.ts';
import { loadOnnxClassifiers } from '../src/export/onnx-runtime.ts';
import { buildServer } from '../src/serve/server.ts';
import { loadFolder, threadHost } from '../src/serve/hosts.ts';
import { isOneLineError, runCli } from './helpers/cli.ts';
import { encodeJpeg, encodePng, grayImage, photoLike } from './helpers/images.ts';
import { REAL_DATA_DIR, tempDir } from './helpers/idx-files.ts';

// Small models, trained once for the whole file: an MLP good enough (about 80%) for the
// photo-like images to mean something, a tiny CNN and the MLP on its features for the pipeline's
// three-model answers.
const overrides = {
  mlp: { trainLimit: 10_000, epochs: 3, hidden: 64 },
  cnn: { trainLimit: 2000, epochs: 2, channels: [4, 4, 8, 8, 8], features: 16, convDropout: 0, featureDropout: 0, learningRate: 0.003 },
  featuresMlp: { epochs: 3, hidden: 32, dropout: 0, learningRate: 0.01 },
};
const MODELS = ['mlp', 'cnn', 'cnn-features-mlp'];
/** Test images compared with fmnist evaluate's answers. */
const N = 100;

const root = tempDir();
const pipeline = join(root, 'pipeline');
await runPipeline({ seed: 3, overrides }, { outDir: pipeline });
const testSet = loadTestSet(REAL_DATA_DIR).data;
const image = (i: number) => testSet.pixels.subarray(i * 784, (i + 1) * 784);

const argmax = (row: ArrayLike<number>, offset = 0) => {
  let best = 0;
  for (let c = 1; c < 10; c++) if (row[offset + c] > row[offset + best]) best = c;
  return best;
};
/** fmnist evaluate's class (its library function, over the whole test set) of each of the first N test images, by model. */
const evaluated = new Map<string, number[]>();
for (const model of MODELS) {
  const { probabilities } = await evaluateSavedModel(join(pipeline, model));
  evaluated.set(model, Array.from({ length: N }, (_, i) => argmax(probabilities, i * 10)));
}
const CLASS_NAMES = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'];
const evaluatedNames = (model: string) => evaluated.get(model)!.map((c) => CLASS_NAMES[c]);

const files = join(root, 'files');
mkdirSync(files);
const npyPath = join(files, `first-${N}.npy`);
writeFileSync(npyPath, encodeNpy({ dtype: 'uint8', shape: [N, 28, 28], data: testSet.pixels.slice(0, N * 784) }));
const grayPaths = [0, 1, 2].map((i) => join(files, `test-${i}.png`));
grayPaths.forEach((path, i) => writeFileSync(path, encodePng(grayImage(image(i)))));
const photoPng = join(files, 'photo-0.png');
const photoJpeg = join(files, 'photo-0.jpg');
writeFileSync(photoPng, encodePng(photoLike(image(0))));
writeFileSync(photoJpeg, encodeJpeg(photoLike(image(0))));

describe('fmnist predict', () => {
  test('a pipeline folder: all three models answer; 28x28 images and a .npy get the classes fmnist evaluate gives', () => {
    const result = runCli(['predict', '--model', pipeline, '--json', '--no-preprocess', ...grayPaths, npyPath]);
    assert.equal(result.status, 0, result.stderr);
    const lines = result.stdout.trim().split('\n').map((line) => JSON.parse(line));
    assert.equal(lines.length, 4, 'one JSON object per file');
    const answers = [...lines.slice(0, 3).map((line) => line.images[0]), ...lines[3].images];
    assert.equal(answers.length, 3 + N);
    for (const [m, model] of MODELS.entries()) {
      const expected = evaluatedNames(model);
      const got = answers.map((answer) => answer.models[m]);
      assert.ok(got.every((entry) => entry.model === model && entry.top.length === 3));
      assert.deepEqual(got.map((entry) => entry.top[0].class), [...expected.slice(0, 3), ...expected], model);
    }
    assert.ok(answers.every((answer) => answer.inverted === false));
  });

  test('a photo-like image (PNG and JPEG, 200x300, colour, white background) is inverted and gets its class', () => {
    const result = runCli(['predict', '--model', join(pipeline, 'mlp'), '--top', '2', photoPng, photoJpeg]);
    assert.equal(result.status, 0, result.stderr);
    const rows = result.stdout.trim().split('\n');
    assert.match(rows[0], /^file +model +inverted +#1 +#2$/);
    assert.equal(evaluatedNames('mlp')[0], 'Ankle boot', 'the MLP classifies test image 0 as its label');
    for (const [row, path] of [[rows[1], photoPng], [rows[2], photoJpeg]]) {
      assert.ok(row.startsWith(path), row);
      assert.match(row, / mlp +yes +Ankle boot \d+\.\d% +\S/);
    }
  });

  test('bad files: a one-line error each, naming the file, exit code 1, the other files still answered', () => {
    const truncated = join(files, 'truncated.png');
    writeFileSync(truncated, encodePng(photoLike(image(1))).subarray(0, 300));
    const empty = join(files, 'empty.jpg');
    writeFileSync(empty, '');
    const huge = join(files, 'huge.png');
    const claim = Uint8Array.from(encodePng(grayImage(image(2))));
    new DataView(claim.buffer).setUint32(16, 20_000);
    new DataView(claim.buffer).setUint32(20, 10_000);
    writeFileSync(huge, claim);
    const text = join(files, 'notes.txt');
    writeFileSync(text, 'not an image');
    const floats = join(files, 'floats.npy');
    writeFileSync(floats, encodeNpy({ dtype: 'float32', shape: [1, 28, 28], data: new Float32Array(784) }));
    const missing = join(files, 'missing.png');
    const result = runCli(['predict', '--model', join(pipeline, 'cnn'), truncated, grayPaths[0], empty, huge, text, floats, missing, photoJpeg]);
    assert.equal(result.status, 1);
    assert.ok(!/^\s+at /m.test(result.stderr), result.stderr);
    const errors = result.stderr.trim().split('\n').filter((line) => line.startsWith('fmnist: error: '));
    assert.equal(errors.length, 6, result.stderr);
    assert.match(errors[0], /truncated\.png: not a valid PNG \(truncated\)/);
    assert.match(errors[1], /empty\.jpg: empty \(0 bytes\)/);
    assert.match(errors[2], /huge\.png: 20000x10000 \(200\.0 megapixels\), over the limit of 50\.0 megapixels/);
    assert.match(errors[3], /notes\.txt: not a PNG or JPEG image/);
    assert.match(errors[4], /floats\.npy: holds float32 \[1, 28, 28\]; predict reads uint8 images/);
    assert.match(errors[5], /missing\.png: cannot be read \(no such file\)/);
    assert.match(result.stdout, /test-0\.png +cnn +/);
    assert.match(result.stdout, /photo-0\.jpg +cnn +yes +/);
  });

  test('a folder without a model: one line, exit code 1', () => {
    const result = runCli(['predict', '--model', files, grayPaths[0]]);
    assert.equal(result.status, 1);
    assert.ok(isOneLineError(result.stderr), result.stderr);
    assert.match(result.stderr, /holds no model \(no model\.json\) and no pipeline/);
  });
});

const kernels = await loadKernels('auto');
const classifiers = await loadClassifiers(pipeline, kernels);
/** Anything the server logs is a 5xx: a bug. */
const serverLog: string[] = [];

/** A KServe v2 infer request body for images [count, 28, 28]. */
function inferBody(pixels: Uint8Array, datatype: 'UINT8' | 'FP32' = 'UINT8'): object {
  const data = datatype === 'UINT8' ? Array.from(pixels) : Array.from(pixels, (v) => v / 255);
  return { inputs: [{ name: 'images', shape: [pixels.length / 784, 28, 28], datatype, data }] };
}

describe('fmnist serve: the protocol, through inject', () => {
  const app = buildServer({ classifiers, maxBatch: 16, maxWaitMs: 1, bodyLimit: 512 * 1024, maxImagesPerRequest: 40, maxImagePixels: 4_000_000, log: (line) => serverLog.push(line) });
  after(() => app.close());

  test('health, server and model metadata', async () => {
    assert.deepEqual((await app.inject({ url: '/v2/health/live' })).json(), { live: true });
    assert.deepEqual((await app.inject({ url: '/v2/health/ready' })).json(), { ready: true });
    assert.equal((await app.inject({ url: '/v2' })).json().name, 'fmnist');
    for (const model of MODELS) {
      const metadata = (await app.inject({ url: `/v2/models/${model}` })).json();
      assert.equal(metadata.name, model);
      assert.deepEqual(metadata.inputs, [{ name: 'images', datatype: 'UINT8', shape: [-1, 28, 28] }]);
      assert.deepEqual(metadata.outputs.map((output: { name: string }) => output.name), ['probabilities', 'classes']);
      assert.deepEqual((await app.inject({ url: `/v2/models/${model}/ready` })).json(), { name: model, ready: true });
    }
  });

  test('infer (UINT8 and FP32, flat and nested) and classify (PNG, without preprocessing) give the classes fmnist evaluate gives', async () => {
    const pixels = testSet.pixels.subarray(0, N * 784);
    for (const model of MODELS) {
      const classes: string[] = [];
      for (let start = 0; start < N; start += 40) {
        const chunk = pixels.subarray(start * 784, Math.min(N, start + 40) * 784);
        const response = await app.inject({ method: 'POST', url: `/v2/models/${model}/infer`, payload: inferBody(chunk, start === 0 ? 'FP32' : 'UINT8') });
        assert.equal(response.statusCode, 200, response.body);
        const body = response.json();
        const [probabilities, names] = body.outputs;
        assert.equal(body.model_name, model);
        assert.deepEqual(probabilities.shape, [chunk.length / 784, 10]);
        assert.equal(probabilities.datatype, 'FP32');
        assert.equal(names.datatype, 'BYTES');
        names.data.forEach((name: string, i: number) => assert.equal(name, CLASS_NAMES[argmax(probabilities.data, i * 10)]));
        classes.push(...names.data);
      }
      assert.deepEqual(classes, evaluatedNames(model), model);
    }
    const nested = { inputs: [{ name: 'images', shape: [1, 28, 28], datatype: 'UINT8', data: [Array.from({ length: 28 }, (_, y) => Array.from(image(3).subarray(y * 28, y * 28 + 28)))] }], outputs: [{ name: 'classes' }], id: 'nested' };
    const answer = (await app.inject({ method: 'POST', url: '/v2/models/cnn/infer', payload: nested })).json();
    assert.deepEqual(answer, { model_name: 'cnn', id: 'nested', outputs: [{ name: 'classes', datatype: 'BYTES', shape: [1], data: [evaluatedNames('cnn')[3]] }] });

    for (const model of MODELS) {
      for (let i = 0; i < 10; i++) {
        const response = await app.inject({ method: 'POST', url: `/v1/models/${model}/classify?preprocess=false&top=10`, headers: { 'content-type': 'image/png' }, payload: encodePng(grayImage(image(i))) });
        assert.equal(response.statusCode, 200, response.body);
        const body = response.json();
        assert.equal(body.class, evaluatedNames(model)[i], `${model} image ${i}`);
        assert.equal(body.top.length, 10);
        assert.equal(body.inverted, false);
      }
    }
  });

  test('photo-like images (200x300, colour, white background) through classify: inverted, and classified as fmnist evaluate classifies the originals', async () => {
    // Test image 0 as a multipart upload (JPEG) and as a PNG body.
    const boundary = 'fmnist-test-boundary';
    const jpegBytes = encodeJpeg(photoLike(image(0)));
    const multipart = Buffer.concat([
      Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="image"; filename="photo.jpg"\r\nContent-Type: image/jpeg\r\n\r\n`),
      jpegBytes,
      Buffer.from(`\r\n--${boundary}--\r\n`),
    ]);
    const uploaded = await app.inject({ method: 'POST', url: '/v1/models/mlp/classify', headers: { 'content-type': `multipart/form-data; boundary=${boundary}` }, payload: multipart });
    assert.equal(uploaded.statusCode, 200, uploaded.body);
    assert.equal(uploaded.json().class, 'Ankle boot');
    assert.equal(uploaded.json().inverted, true);

    // The first N as PNG photos: the MLP's answers agree with evaluate's on the originals, bar
    // a few where fitting the cropped garment to 28 pixels changes its scale.
    let agree = 0;
    let correctPhotos = 0;
    let correctOriginals = 0;
    for (let i = 0; i < N; i++) {
      const response = await app.inject({ method: 'POST', url: '/v1/models/mlp/classify', headers: { 'content-type': 'image/png' }, payload: encodePng(photoLike(image(i))) });
      assert.equal(response.statusCode, 200, response.body);
      assert.equal(response.json().inverted, true);
      const name = response.json().class;
      if (name === evaluatedNames('mlp')[i]) agree++;
      if (name === CLASS_NAMES[testSet.labels[i]]) correctPhotos++;
      if (evaluatedNames('mlp')[i] === CLASS_NAMES[testSet.labels[i]]) correctOriginals++;
    }
    assert.ok(agree >= 0.85 * N, `${agree} of ${N} photos classified as their originals`);
    assert.ok(correctPhotos >= correctOriginals - 0.05 * N, `photos ${correctPhotos} correct, originals ${correctOriginals}`);
  });

  test('at least 200 malformed requests: each a 4xx with a JSON error; then the server still answers and classifies correctly', async () => {
    const cases = malformedRequests();
    assert.ok(cases.length >= 200, `${cases.length} cases`);
    for (const { name, request, status } of cases) {
      const response = await app.inject(request);
      assert.equal(response.statusCode, status, `${name}: ${response.statusCode} ${response.body.slice(0, 200)}`);
      const body = JSON.parse(response.body);
      assert.equal(typeof body.error, 'string', name);
      assert.ok(body.error.length > 0 && body.error.length < 400, `${name}: ${body.error}`);
    }
    assert.deepEqual(serverLog, [], 'nothing was logged (no 5xx)');
    assert.equal((await app.inject({ url: '/v2/health/ready' })).statusCode, 200);
    const response = await app.inject({ method: 'POST', url: '/v2/models/cnn/infer', payload: inferBody(testSet.pixels.subarray(0, 10 * 784)) });
    assert.deepEqual(response.json().outputs[1].data, evaluatedNames('cnn').slice(0, 10));
    const metrics = (await app.inject({ url: '/metrics' })).body;
    assert.match(metrics, /fmnist_http_errors_total\{route="\/v2\/models\/:name\/infer",status="400"\} \d+/);
    assert.match(metrics, /fmnist_batch_size_images_count\{model="cnn"\} \d+/);
    assert.match(metrics, /fmnist_http_request_duration_seconds_bucket\{le="0.1",route="\/v2\/models\/:name\/infer"\} \d+/);
  });
});

/** A white width x height image with a dark rectangle in its middle third. */
function rectangleImage(width: number, height: number) {
  const data = new Uint8Array(width * height * 4).fill(255);
  for (let y = Math.floor(height / 3); y < (2 * height) / 3; y++) {
    for (let x = Math.floor(width / 3); x < (2 * width) / 3; x++) data.fill(40, (y * width + x) * 4, (y * width + x) * 4 + 3);
  }
  return { width, height, data };
}

interface Case {
  name: string;
  request: InjectOptions;
  status: 400 | 404 | 413 | 415;
}

/** Malformed requests and the status each must get: broken JSON and images, wrong types, shapes, values, models, sizes. */
function malformedRequests(): Case[] {
  const rng = Rng.fromSeed(14);
  const cases: Case[] = [];
  const infer = (name: string, payload: string | object | Buffer, status: Case['status'], contentType = 'application/json', model = 'cnn') =>
    cases.push({ name, status, request: { method: 'POST', url: `/v2/models/${model}/infer`, headers: { 'content-type': contentType }, payload: typeof payload === 'object' && !Buffer.isBuffer(payload) ? JSON.stringify(payload) : payload } });
  const classify = (name: string, payload: string | Buffer, status: Case['status'], contentType = 'image/png', query = '') =>
    cases.push({ name, status, request: { method: 'POST', url: `/v1/models/mlp/classify${query}`, headers: { 'content-type': contentType }, payload } });
  const valid = JSON.stringify(inferBody(image(0)));
  const withInput = (change: Record<string, unknown>) => ({ inputs: [{ ...(inferBody(image(0)) as { inputs: object[] }).inputs[0], ...change }] });

  // Broken JSON: the valid body cut at 40 places, and texts that are not JSON.
  for (let k = 0; k < 40; k++) infer(`JSON cut at ${k}`, valid.slice(0, 1 + rng.int(valid.length - 2)), 400);
  for (const text of ['{', '}', '[]', 'null', '"text"', '42', '{"inputs": NaN}', '{"inputs": [NaN]}', "{'inputs': []}", '{"inputs": [],}', '{"__proto__": {"x": 1}, "inputs": []}', '{"inputs": [{"constructor": {"prototype": {}}}]}', '\u0000', '']) {
    infer(`not JSON or not an object: ${JSON.stringify(text).slice(0, 30)}`, text, 400);
  }
  infer('JSON nested 100,000 deep', '['.repeat(100_000) + ']'.repeat(100_000), 400);

  // The request's structure.
  const structures: [string, unknown][] = [
    ['no inputs', {}],
    ['inputs not an array', { inputs: {} }],
    ['no input', { inputs: [] }],
    ['two inputs', { inputs: [withInput({}).inputs[0], withInput({}).inputs[0]] }],
    ['input a number', { inputs: [1] }],
    ['no name', withInput({ name: undefined })],
    ['no shape', withInput({ shape: undefined })],
    ['no datatype', withInput({ datatype: undefined })],
    ['no data', withInput({ data: undefined })],
    ['datatype INT64', withInput({ datatype: 'INT64' })],
    ['datatype FP16', withInput({ datatype: 'FP16' })],
    ['datatype lower case', withInput({ datatype: 'uint8' })],
    ['datatype a number', withInput({ datatype: 8 })],
    ['name a number', withInput({ name: 1 })],
    ['shape of strings', withInput({ shape: ['1', '28', '28'] })],
    ['shape a string', withInput({ shape: '1,28,28' })],
    ['shape empty', withInput({ shape: [] })],
    ['shape of fractions', withInput({ shape: [1.5, 28, 28] })],
    ['data a string', withInput({ data: 'AAAA' })],
    ['data an object', withInput({ data: { 0: 1 } })],
    ['unknown output', { ...withInput({}), outputs: [{ name: 'logits' }] }],
    ['outputs not an array', { ...withInput({}), outputs: 'classes' }],
    ['id a number', { ...withInput({}), id: 7 }],
  ];
  for (const [name, body] of structures) infer(name, body as object, 400);

  // Names and shapes.
  infer('input named x', withInput({ name: 'x' }), 400);
  for (const shape of [[1, 28], [1, 784], [784], [1, 28, 27], [1, 27, 28], [0, 28, 28], [-1, 28, 28], [1, 28, 28, 1], [2, 28, 28], [1, 1, 784]]) {
    infer(`shape [${shape}]`, withInput({ shape }), 400);
  }
  infer('more images than the limit', withInput({ shape: [41, 28, 28], data: new Array(41 * 784).fill(0) }), 413);
  infer('data too short', withInput({ data: Array.from(image(0)).slice(1) }), 400);
  infer('data too long', withInput({ data: [...Array.from(image(0)), 0] }), 400);
  const rows = (length: number, value: () => unknown) => Array.from({ length: 28 }, () => Array.from({ length }, value));
  infer('data nested deeper than the shape', withInput({ data: [rows(28, () => [0])] }), 400);
  infer('data nested [28][28][1] for the shape [1, 28, 28]', withInput({ data: rows(28, () => [0]) }), 400);
  infer('data nested [28][28] for the shape [1, 28, 28]', withInput({ data: rows(28, () => 0) }), 400);
  infer('nested rows of the wrong length', withInput({ data: [rows(27, () => 0)] }), 400);
  infer('data half flat, half nested', withInput({ data: [rows(28, () => 0)[0], ...new Array(756).fill(0)] }), 400);

  // Values: each bad value at a random place of a valid request.
  const badUint8: unknown[] = [256, -1, 1.5, 1e9, -0.5, '12', 'NaN', null, true, false, [], {}, 300, 255.5, '0x10'];
  const badFloat: unknown[] = [1.01, -0.01, 2, 255, -1e-9, 'NaN', 'Infinity', null, '0.5', [0.5], {}, true];
  for (const value of badUint8) {
    const data: unknown[] = Array.from(image(0));
    data[rng.int(784)] = value;
    infer(`UINT8 value ${JSON.stringify(value)}`, withInput({ data }), 400);
  }
  for (const value of badFloat) {
    const data: unknown[] = Array.from(image(0), (v) => v / 255);
    data[rng.int(784)] = value;
    infer(`FP32 value ${JSON.stringify(value)}`, withInput({ datatype: 'FP32', data }), 400);
  }
  infer('a value of 1e999 (JSON for Infinity)', valid.replace(/"data":\[(\d+)/, '"data":[1e999'), 400);
  infer('an FP32 value of 1e999 (JSON for Infinity)', JSON.stringify(withInput({ datatype: 'FP32', data: new Array(784).fill(0) })).replace(',0]', ',1e999]'), 400);

  // Content types the infer route does not take.
  for (const type of ['text/plain', 'application/xml', 'image/png', 'image/gif', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x']) {
    infer(`infer with ${type}`, valid, 415, type);
  }
  infer('infer with an oversized body', JSON.stringify({ inputs: [{ name: 'images', shape: [1, 28, 28], datatype: 'UINT8', data: new Array(200_000).fill(255) }] }), 413);
  infer('a body that ends before its content-length', valid, 400);
  (cases.at(-1)!.request.headers as Record<string, string>)['content-length'] = String(valid.length + 10);

  // Binary tensor data (the JSON's length in Inference-Header-Content-Length, then the bytes):
  // lengths that overrun the body, element counts that do not fit the shape, unknown datatypes.
  const binary = (name: string, header: object | string, data: Buffer, headerLength?: string, status: Case['status'] = 400) => {
    const json = Buffer.from(typeof header === 'string' ? header : JSON.stringify(header));
    const headers: Record<string, string> = { 'content-type': 'application/octet-stream', 'inference-header-content-length': headerLength ?? String(json.length) };
    cases.push({ name: `binary: ${name}`, status, request: { method: 'POST', url: '/v2/models/cnn/infer', headers, payload: Buffer.concat([json, data]) } });
  };
  const binaryInput = (change: Record<string, unknown>, size = 784) => ({ inputs: [{ name: 'images', shape: [1, 28, 28], datatype: 'UINT8', parameters: { binary_data_size: size }, ...change }] });
  const pixels = Buffer.from(image(0));
  const header = JSON.stringify(binaryInput({}));
  binary('header length past the end of the body', header, pixels, String(header.length + 785));
  binary('header length 10^12', header, pixels, '999999999999');
  binary('header length negative', header, pixels, '-5');
  binary('header length not a number', header, pixels, 'twelve');
  binary('header length empty', header, pixels, '');
  binary('header length 1.5', header, pixels, '1.5');
  binary('header length cutting the JSON short', header, pixels, String(header.length - 3));
  binary('header length taking pixels into the JSON', header, pixels, String(header.length + 3));
  binary('header length 0', header, pixels, '0');
  binary('header JSON broken', header.slice(0, -1) + ',', pixels);
  binary('binary_data_size past the end', binaryInput({}, 785), pixels);
  binary('binary_data_size shorter than the shape needs', binaryInput({}, 783), pixels.subarray(0, 783));
  binary('binary_data_size longer than the shape needs', binaryInput({}, 785), Buffer.concat([pixels, Buffer.alloc(1)]));
  binary('binary_data_size negative', binaryInput({}, -784), pixels);
  binary('binary_data_size a string', binaryInput({}, '784' as unknown as number), pixels);
  binary('binary_data_size a fraction', binaryInput({}, 783.5), pixels);
  binary('bytes after the input\'s data', binaryInput({}), Buffer.concat([pixels, Buffer.alloc(10)]));
  binary('binary data and JSON data both', binaryInput({ data: Array.from(image(0)) }), pixels);
  binary('binary data without the header length', binaryInput({}), pixels, undefined);
  delete (cases.at(-1)!.request.headers as Record<string, string>)['inference-header-content-length'];
  binary('shape [2, 28, 28] with one image of bytes', binaryInput({ shape: [2, 28, 28] }), pixels);
  binary('FP32 with a UINT8 image\'s bytes', binaryInput({ datatype: 'FP32' }), pixels);
  binary('FP32 bytes not a multiple of 4', binaryInput({ datatype: 'FP32' }, 3137), Buffer.alloc(3137));
  binary('FP32 NaN', binaryInput({ datatype: 'FP32' }, 3136), Buffer.from(new Float32Array(784).fill(Number.NaN).buffer));
  binary('FP32 above 1', binaryInput({ datatype: 'FP32' }, 3136), Buffer.from(new Float32Array(784).fill(1.5).buffer));
  for (const datatype of ['INT8', 'FP16', 'BYTES', 'BF16', 'uint8', '']) binary(`datatype ${datatype || 'empty'}`, binaryInput({ datatype }), pixels);
  binary('more binary images than the limit', binaryInput({ shape: [41, 28, 28] }, 41 * 784), Buffer.alloc(41 * 784), undefined, 413);
  binary('binary_data_output not a boolean', { ...binaryInput({}), outputs: [{ name: 'classes', parameters: { binary_data: 'yes' } }] }, pixels);
  binary('classification of 11 classes', { ...binaryInput({}), outputs: [{ name: 'probabilities', parameters: { classification: 11 } }] }, pixels);
  binary('classification of the classes output', { ...binaryInput({}), outputs: [{ name: 'classes', parameters: { classification: 2 } }] }, pixels);
  for (const version of ['2', '0', 'latest']) {
    cases.push({ name: `infer version ${version}`, status: 404, request: { method: 'POST', url: `/v2/models/cnn/versions/${version}/infer`, headers: { 'content-type': 'application/json' }, payload: valid } });
  }

  // Unknown models and routes.
  for (const model of ['nope', 'CNN', 'mlp2', 'cnn-features', '%2e%2e', 'a'.repeat(90), 'm%00x']) infer(`unknown model ${model.slice(0, 20)}`, valid, 404, 'application/json', model);
  for (const url of ['/v2/models/nope', '/v2/models/nope/ready', '/v3', '/v2/models/cnn/versions/1/infer', '/v2/models/cnn/versions/2', '/v2/models/cnn/versions/2/ready', '/v2/models/cnn/infer/x', '/v1/models/cnn', '/']) {
    cases.push({ name: `GET ${url}`, status: 404, request: { method: 'GET', url } });
  }
  cases.push({ name: 'GET on infer', status: 404, request: { method: 'GET', url: '/v2/models/cnn/infer' } });
  cases.push({ name: 'DELETE a model', status: 404, request: { method: 'DELETE', url: '/v2/models/cnn' } });
  cases.push({ name: 'classify an unknown model', status: 404, request: { method: 'POST', url: '/v1/models/nope/classify', headers: { 'content-type': 'image/png' }, payload: encodePng(grayImage(image(0))) } });

  // Images: truncated at 40 places, other broken files, wrong types, sizes, queries.
  const png = encodePng(photoLike(image(1)));
  const jpg = encodeJpeg(photoLike(image(1)));
  for (let k = 0; k < 25; k++) classify(`PNG cut at ${k}`, png.subarray(0, 1 + rng.int(png.length - 1)), 400);
  for (let k = 0; k < 15; k++) classify(`JPEG cut at ${k}`, jpg.subarray(0, 1 + rng.int(jpg.length - 1)), 400, 'image/jpeg');
  for (let k = 0; k < 10; k++) {
    const flipped = Buffer.from(png);
    flipped.fill(rng.int(256), 33 + rng.int(png.length - 40), png.length - 12);
    classify(`PNG with its data overwritten ${k}`, flipped, 400);
  }
  classify('an empty PNG body', Buffer.alloc(0), 400);
  classify('JSON sent as image/png', valid, 400);
  const claiming = (width: number, height: number) => {
    const bytes = Buffer.from(encodePng(grayImage(image(0))));
    bytes.writeUInt32BE(width, 16);
    bytes.writeUInt32BE(height, 20);
    return bytes;
  };
  classify('a PNG of 0x28', claiming(0, 28), 400);
  classify('a PNG claiming 3000x3000 (over 4 megapixels)', claiming(3000, 3000), 413);
  classify('a PNG claiming 4294967295x4294967295', claiming(0xffffffff, 0xffffffff), 413);
  classify('an image over the body limit', Buffer.concat([png, Buffer.alloc(600 * 1024)]), 413);
  classify('a 30x30 PNG without preprocessing', encodePng({ width: 30, height: 30, data: new Uint8Array(3600).fill(255) }), 400, 'image/png', '?preprocess=false');
  for (const query of ['?top=0', '?top=11', '?top=x', '?top=1.5', '?top=-1', '?preprocess=no', '?top=1&top=2']) classify(`query ${query}`, png, 400, 'image/png', query);
  for (const type of ['text/plain', 'application/json', 'image/gif', 'image/webp', 'application/octet-stream', 'application/x-www-form-urlencoded']) {
    classify(`classify with ${type}`, type === 'application/json' ? valid : png, 415, type);
  }
  const boundary = 'b0undary';
  const part = (headers: string, body: Buffer | string) => Buffer.concat([Buffer.from(`--${boundary}\r\n${headers}\r\n\r\n`), Buffer.from(body), Buffer.from(`\r\n--${boundary}--\r\n`)]);
  const upload = (name: string, body: Buffer, status: Case['status']) => classify(name, body, status, `multipart/form-data; boundary=${boundary}`);
  upload('multipart without a file', part('Content-Disposition: form-data; name="note"', 'hello'), 400);
  upload('multipart with a GIF', part('Content-Disposition: form-data; name="f"; filename="a.gif"\r\nContent-Type: image/gif', 'GIF89a...'), 415);
  upload('multipart with a truncated PNG', part('Content-Disposition: form-data; name="f"; filename="a.png"\r\nContent-Type: image/png', png.subarray(0, 100)), 400);
  upload('multipart cut short', part('Content-Disposition: form-data; name="f"; filename="a.png"\r\nContent-Type: image/png', png).subarray(0, 200), 400);
  upload('multipart with a file over the limit', part('Content-Disposition: form-data; name="f"; filename="a.png"\r\nContent-Type: image/png', Buffer.concat([png, Buffer.alloc(600 * 1024)])), 413);
  upload('multipart of garbage', Buffer.from('garbage without boundaries'), 400);
  cases.push({ name: 'multipart without a boundary', status: 400, request: { method: 'POST', url: '/v1/models/mlp/classify', headers: { 'content-type': 'multipart/form-data' }, payload: part('Content-Disposition: form-data; name="f"; filename="a.png"', png) } });
  return cases;
}

describe('fmnist serve over loopback', () => {
  test('concurrent one-image requests share forward passes and each gets its own answer', async () => {
    const app: FastifyInstance = buildServer({ classifiers, maxBatch: 16, maxWaitMs: 5, log: (line) => serverLog.push(line) });
    await app.listen({ host: '127.0.0.1', port: 0 });
    try {
      const { port } = app.server.address() as { port: number };
      const answers = await Promise.all(
        Array.from({ length: N }, async (_, i) => {
          const response = await fetch(`http://127.0.0.1:${port}/v2/models/cnn/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(inferBody(image(i))) });
          assert.equal(response.status, 200);
          return ((await response.json()) as { outputs: { data: string[] }[] }).outputs[1].data[0];
        }),
      );
      assert.deepEqual(answers, evaluatedNames('cnn'));
      const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      const passes = Number(/^fmnist_batch_size_images_count\{model="cnn"\} (\d+)$/m.exec(metrics)![1]);
      const images = Number(/^fmnist_batch_size_images_sum\{model="cnn"\} (\d+)$/m.exec(metrics)![1]);
      assert.equal(images, N);
      assert.ok(passes < N / 2, `${N} requests in ${passes} forward passes`);

      // Bytes that are not HTTP get a 400, and the server goes on.
      const reply = await new Promise<string>((resolve) => {
        const socket = connect(port, '127.0.0.1', () => socket.end('NOT HTTP\r\n\r\n'));
        let text = '';
        socket.on('data', (chunk) => (text += chunk));
        socket.on('close', () => resolve(text));
      });
      assert.match(reply, /^HTTP\/1\.1 400/);
      assert.equal((await fetch(`http://127.0.0.1:${port}/v2/health/live`)).status, 200);

      // A large photo is decoded off the event loop: while it decodes (most of a second or more),
      // the event loop never stalls for more than a fraction of that.
      const large = encodePng(rectangleImage(3000, 2000));
      const stalls = monitorEventLoopDelay({ resolution: 5 });
      stalls.enable();
      const started = performance.now();
      const response = await fetch(`http://127.0.0.1:${port}/v1/models/mlp/classify`, { method: 'POST', headers: { 'content-type': 'image/png' }, body: new Uint8Array(large) });
      const classifyMs = performance.now() - started;
      stalls.disable();
      assert.equal(response.status, 200);
      assert.equal(((await response.json()) as { inverted: boolean }).inverted, true);
      const longestStallMs = stalls.max / 1e6;
      assert.ok(longestStallMs < classifyMs / 3, `the event loop stalled for ${longestStallMs.toFixed(0)} ms during a ${classifyMs.toFixed(0)} ms classification`);
    } finally {
      await app.close();
    }
    assert.deepEqual(serverLog, []);
  });

  test('classifiers on a thread of their own answer exactly as on this one; a folder without a model is one sentence', async () => {
    // The same backend and thread count as `kernels` (the native team's size is the process's).
    const host = await threadHost({ backend: kernels.name, threads: kernels.name === 'js' ? undefined : availableParallelism() });
    try {
      const threaded = await loadFolder(host, pipeline);
      assert.deepEqual(threaded.map((classifier) => classifier.name), MODELS);
      const pixels = testSet.pixels.slice(0, N * 784);
      for (const [m, classifier] of threaded.entries()) {
        const probabilities = await classifier.classify(pixels, N);
        assert.deepEqual(probabilities, await classifiers[m].classify(pixels, N), classifier.name);
        assert.deepEqual(Array.from({ length: N }, (_, i) => argmax(probabilities, i * 10)), evaluated.get(classifier.name));
      }
      await assert.rejects(loadFolder(host, files), (error: Error) => error.name === 'UserError' && /holds no model/.test(error.message));
    } finally {
      await host.close();
    }
  });

  test('SIGTERM: no new connections, the request in flight is answered, exit code 0', async () => {
    const cli = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));
    // A long --max-wait keeps the request waiting in the batcher when SIGTERM comes.
    const server = spawn(process.execPath, ['--import', 'tsx', cli, 'serve', '--model', join(pipeline, 'mlp'), '--port', '0', '--max-wait', '1500'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    server.stderr.on('data', (chunk) => (stderr += chunk));
    const exited = new Promise<number | null>((resolve) => server.on('exit', resolve));
    const port = await new Promise<number>((resolve, reject) => {
      let stdout = '';
      server.stdout.on('data', (chunk) => {
        stdout += chunk;
        const match = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(stdout);
        if (match) resolve(Number(match[1]));
      });
      server.on('exit', () => reject(new Error(`serve exited early: ${stderr}`)));
    });
    const inFlight = new Promise<{ status: number; body: string }>((resolve, reject) => {
      const request = httpRequest({ host: '127.0.0.1', port, method: 'POST', path: '/v2/models/mlp/infer', headers: { 'content-type': 'application/json' } }, (response) => {
        let body = '';
        response.on('data', (chunk) => (body += chunk));
        response.on('end', () => resolve({ status: response.statusCode!, body }));
      });
      request.on('error', reject);
      request.end(JSON.stringify(inferBody(image(0))));
    });
    await new Promise((resolve) => setTimeout(resolve, 500));
    server.kill('SIGTERM');
    await new Promise((resolve) => setTimeout(resolve, 200));
    await assert.rejects(fetch(`http://127.0.0.1:${port}/v2/health/live`), 'no new connections after SIGTERM');
    const answer = await inFlight;
    assert.equal(answer.status, 200, answer.body);
    assert.equal(JSON.parse(answer.body).outputs[1].data[0], evaluatedNames('mlp')[0]);
    assert.equal(await exited, 0, stderr);
    assert.match(stderr, /SIGTERM: no new connections; finishing the requests in flight/);
  });
});

test('fmnist serve --runtime onnx: ONNX Runtime behind the same HTTP layer answers the same requests with the same classes', async () => {
  const onnxApp = buildServer({ classifiers: await loadOnnxClassifiers(pipeline), maxBatch: 16, maxWaitMs: 1, bodyLimit: 512 * 1024, maxImagesPerRequest: 40, maxImagePixels: 4_000_000, log: (line) => serverLog.push(line) });
  after(() => onnxApp.close());
  const chunk = testSet.pixels.subarray(0, 40 * 784);
  for (const model of MODELS) {
    const response = await onnxApp.inject({ method: 'POST', url: `/v2/models/${model}/infer`, payload: inferBody(chunk) });
    assert.equal(response.statusCode, 200, response.body);
    assert.deepEqual(response.json().outputs[1].data, evaluatedNames(model).slice(0, 40), model);
  }
});
