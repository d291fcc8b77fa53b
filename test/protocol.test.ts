/**
 * The Open Inference Protocol as clients speak it to `fmnist serve --model-repository`: every
 * endpoint over HTTP (JSON and binary tensors) and over gRPC (a client built by @grpc/grpc-js
 * from the proto file), the answers checked against fmnist evaluate's; the model repository
 * (index, load, unload, a folder added while serving); and a model loaded and unloaded in a loop
 * while 32 connections classify with another, with none failing and memory bounded.
 */
import assert from 'node:assert/strict';
import { cpSync, mkdirSync, truncateSync } from 'node:fs';
import { Agent, request as httpRequest } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { ServiceError } from '@grpc/grpc-js';
import { loadTestSet } from '../src/data/load.ts';
import { evaluateSavedModel } from '../src/runs/evaluate.ts';
import { runPipeline } from '../src/runs/pipeline.ts';
import type { ModelHost } from '../src/serve/hosts.ts';
import type { ClientError } from '../src/serve/protocol.ts';
import { ModelRepository } from '../src/serve/repository.ts';
import { REAL_DATA_DIR, tempDir } from './helpers/idx-files.ts';
import { binaryInferRequest, decodeInferResponse, decodeTensorBytes, grpcClient, startServe, type RunningServer } from './helpers/serve.ts';

const CLASS_NAMES = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'];
/** Test images whose answers are compared with fmnist evaluate's. */
const N = 64;

// A repository of one small pipeline (three models: MLP, CNN, MLP on CNN features).
const repository = tempDir();
const pipeline = join(repository, 'small');
await runPipeline(
  {
    seed: 5,
    overrides: {
      mlp: { trainLimit: 5000, epochs: 2, hidden: 32 },
      cnn: { trainLimit: 1000, epochs: 1, channels: [4, 4, 8, 8, 8], features: 16, convDropout: 0, featureDropout: 0, learningRate: 0.003 },
      featuresMlp: { epochs: 2, hidden: 16, dropout: 0, learningRate: 0.01 },
    },
  },
  { outDir: pipeline },
);
const MODELS = ['small-mlp', 'small-cnn', 'small-cnn-features-mlp'];
const folderOf = (model: string) => join(pipeline, model.replace(/^small-/, ''));
const testSet = loadTestSet(REAL_DATA_DIR).data;
const pixels = testSet.pixels.slice(0, N * 784);

const argmax = (row: ArrayLike<number>, offset = 0) => {
  let best = 0;
  for (let c = 1; c < 10; c++) if (row[offset + c] > row[offset + best]) best = c;
  return best;
};
/** fmnist evaluate's probabilities and classes for the first N test images, by model. */
const evaluated = new Map<string, { probabilities: Float32Array; classes: string[] }>();
for (const model of MODELS) {
  const { probabilities } = await evaluateSavedModel(folderOf(model));
  evaluated.set(model, { probabilities: probabilities.slice(0, N * 10), classes: Array.from({ length: N }, (_, i) => CLASS_NAMES[argmax(probabilities, i * 10)]) });
}

/** A response's status, headers and body. */
async function http(server: RunningServer, method: string, path: string, body?: Buffer | object, headers: Record<string, string> = {}) {
  const json = body !== undefined && !Buffer.isBuffer(body);
  const response = await fetch(server.url + path, {
    method,
    headers: json ? { 'content-type': 'application/json', ...headers } : headers,
    body: json ? JSON.stringify(body) : body && new Uint8Array(body as Buffer),
  });
  return { status: response.status, headers: response.headers, body: Buffer.from(await response.arrayBuffer()) };
}
const jsonOf = (response: { body: Buffer }) => JSON.parse(response.body.toString('utf8'));

/** Probabilities close to evaluate's (the same engine, other batch sizes: the sums' order may differ in the last bit). */
function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, message: string) {
  assert.equal(actual.length, expected.length, message);
  for (let i = 0; i < actual.length; i++) assert.ok(Math.abs(actual[i] - expected[i]) < 1e-5, `${message}: [${i}] ${actual[i]} vs ${expected[i]}`);
}

describe('the protocol over HTTP and gRPC, against fmnist evaluate', () => {
  let server: RunningServer;
  before(async () => {
    server = await startServe(['--model-repository', repository, '--grpc-port', '0', '--max-batch', '32', '--max-request-images', '64']);
  });
  after(async () => {
    assert.equal(await server.stop(), 0);
    assert.doesNotMatch(server.stderr(), /error answering/, 'no request was answered with a 500');
  });

  test('server metadata, health, and each model\'s metadata, readiness and configuration, with and without its version', async () => {
    const metadata = jsonOf(await http(server, 'GET', '/v2'));
    assert.equal(metadata.name, 'fmnist');
    assert.deepEqual([...metadata.extensions].sort(), ['binary_tensor_data', 'classification', 'model_configuration', 'model_repository', 'statistics']);
    assert.equal((await http(server, 'GET', '/v2/health/live')).status, 200);
    assert.deepEqual(jsonOf(await http(server, 'GET', '/v2/health/ready')), { ready: true });
    for (const model of MODELS) {
      for (const prefix of [`/v2/models/${model}`, `/v2/models/${model}/versions/1`]) {
        const described = jsonOf(await http(server, 'GET', prefix));
        assert.equal(described.name, model);
        assert.deepEqual(described.versions, ['1']);
        assert.deepEqual(described.inputs, [{ name: 'images', datatype: 'UINT8', shape: [-1, 28, 28] }]);
        assert.deepEqual(described.outputs, [
          { name: 'probabilities', datatype: 'FP32', shape: [-1, 10] },
          { name: 'classes', datatype: 'BYTES', shape: [-1] },
        ]);
        assert.deepEqual(jsonOf(await http(server, 'GET', `${prefix}/ready`)), { name: model, ready: true });
        const config = jsonOf(await http(server, 'GET', `${prefix}/config`));
        assert.equal(config.name, model);
        assert.equal(config.max_batch_size, 32);
        assert.deepEqual(config.dynamic_batching, { max_queue_delay_microseconds: 0 });
        assert.deepEqual(config.input, [{ name: 'images', data_type: 'TYPE_UINT8', dims: [28, 28] }]);
      }
      assert.equal((await http(server, 'GET', `/v2/models/${model}/versions/2`)).status, 404);
    }
    assert.equal((await http(server, 'GET', '/v2/models/small/ready')).status, 404);
  });

  test('infer over HTTP: JSON and binary inputs (UINT8, FP32), JSON and binary outputs, the classification extension, with and without the version', async () => {
    for (const model of MODELS) {
      const expected = evaluated.get(model)!;
      // JSON in, JSON out, through the versioned route.
      const jsonRequest = { id: 'json', inputs: [{ name: 'images', shape: [N, 28, 28], datatype: 'UINT8', data: Array.from(pixels) }] };
      const plain = jsonOf(await http(server, 'POST', `/v2/models/${model}/versions/1/infer`, jsonRequest));
      assert.equal(plain.model_name, model);
      assert.equal(plain.model_version, '1');
      assert.equal(plain.id, 'json');
      assertClose(plain.outputs[0].data, expected.probabilities, `${model} JSON`);
      assert.deepEqual(plain.outputs[1].data, expected.classes);

      for (const datatype of ['UINT8', 'FP32'] as const) {
        // Binary in, every output binary (binary_data_output).
        const allBinary = binaryInferRequest(pixels, datatype, { parameters: { binary_data_output: true } });
        const response = await http(server, 'POST', `/v2/models/${model}/infer`, allBinary.body, allBinary.headers);
        assert.equal(response.status, 200, response.body.toString().slice(0, 200));
        const decoded = decodeInferResponse(response.body, response.headers.get('inference-header-content-length'));
        assert.deepEqual(decoded.outputs.map(({ name, datatype, shape, binary }) => ({ name, datatype, shape, binary })), [
          { name: 'probabilities', datatype: 'FP32', shape: [N, 10], binary: true },
          { name: 'classes', datatype: 'BYTES', shape: [N], binary: true },
        ]);
        assertClose(decoded.outputs[0].values as number[], expected.probabilities, `${model} ${datatype} binary`);
        assert.deepEqual(decoded.outputs[1].values, expected.classes);
      }

      // Binary in; the probabilities binary, the classes as JSON, and the top 3 (classification).
      const mixed = binaryInferRequest(pixels, 'UINT8', {
        outputs: [
          { name: 'probabilities', parameters: { binary_data: true } },
          { name: 'classes', parameters: { binary_data: false } },
        ],
      });
      const mixedAnswer = await http(server, 'POST', `/v2/models/${model}/infer`, mixed.body, mixed.headers);
      const [probabilities, classes] = decodeInferResponse(mixedAnswer.body, mixedAnswer.headers.get('inference-header-content-length')).outputs;
      assert.ok(probabilities.binary && !classes.binary);
      assert.deepEqual(classes.values, expected.classes);
      const top = jsonOf(await http(server, 'POST', `/v2/models/${model}/infer`, { inputs: jsonRequest.inputs, outputs: [{ name: 'probabilities', parameters: { classification: 3 } }] }));
      assert.deepEqual(top.outputs[0].shape, [N, 3]);
      for (let i = 0; i < N; i++) {
        const [score, index, name] = (top.outputs[0].data[i * 3] as string).split(':');
        assert.equal(name, expected.classes[i]);
        assert.equal(CLASS_NAMES[Number(index)], name);
        assert.ok(Math.abs(Number(score) - expected.probabilities[i * 10 + Number(index)]) < 1e-5);
      }
    }
  });

  test('infer over gRPC: contents and raw_input_contents (UINT8, FP32), raw outputs; metadata, readiness, and errors as gRPC statuses', async () => {
    const client = grpcClient(server.grpcPort!);
    try {
      assert.deepEqual(await client.call('ServerLive', {}), { live: true });
      assert.deepEqual(await client.call('ServerReady', {}), { ready: true });
      const metadata = await client.call<{ name: string; extensions: string[] }>('ServerMetadata', {});
      assert.equal(metadata.name, 'fmnist');
      assert.ok(metadata.extensions.includes('binary_tensor_data'));
      for (const model of MODELS) {
        const expected = evaluated.get(model)!;
        assert.deepEqual(await client.call('ModelReady', { name: model, version: '1' }), { ready: true });
        const described = await client.call<{ name: string; inputs: object[] }>('ModelMetadata', { name: model });
        assert.equal(described.name, model);
        assert.deepEqual(described.inputs, [{ name: 'images', datatype: 'UINT8', shape: [-1, 28, 28] }]);

        type InferResponse = { model_name: string; outputs: { name: string; datatype: string; shape: number[]; contents: { fp32_contents: number[]; bytes_contents: Buffer[] } | null }[]; raw_output_contents: Buffer[] };
        const input = { name: 'images', datatype: 'UINT8', shape: [N, 28, 28] };
        const inContents = await client.call<InferResponse>('ModelInfer', { model_name: model, inputs: [{ ...input, contents: { uint_contents: Array.from(pixels) } }] });
        assert.equal(inContents.model_name, model);
        assert.equal(inContents.raw_output_contents.length, 0);
        assertClose(inContents.outputs[0].contents!.fp32_contents, expected.probabilities, `${model} gRPC contents`);
        assert.deepEqual(inContents.outputs[1].contents!.bytes_contents.map((bytes) => bytes.toString('utf8')), expected.classes);

        const floats = await client.call<InferResponse>('ModelInfer', { model_name: model, model_version: '1', inputs: [{ ...input, datatype: 'FP32', contents: { fp32_contents: Array.from(pixels, (v) => v / 255) } }] });
        assert.deepEqual(floats.outputs[1].contents!.bytes_contents.map((bytes) => bytes.toString('utf8')), expected.classes);

        for (const datatype of ['UINT8', 'FP32'] as const) {
          const raw = datatype === 'UINT8' ? Buffer.from(pixels) : Buffer.from(Float32Array.from(pixels, (v) => v / 255).buffer);
          const answer = await client.call<InferResponse>('ModelInfer', { model_name: model, inputs: [{ ...input, datatype }], raw_input_contents: [raw] });
          assert.deepEqual(answer.outputs.map((output) => [output.name, output.datatype, output.shape]), [['probabilities', 'FP32', [N, 10]], ['classes', 'BYTES', [N]]]);
          assertClose(decodeTensorBytes('FP32', answer.raw_output_contents[0]) as number[], expected.probabilities, `${model} gRPC raw ${datatype}`);
          assert.deepEqual(decodeTensorBytes('BYTES', answer.raw_output_contents[1]), expected.classes);
        }
      }
      const refused = async (method: string, request: object, code: number, pattern: RegExp) => {
        await assert.rejects(client.call(method, request), (error: ServiceError) => {
          assert.equal(error.code, code, error.details);
          assert.match(error.details, pattern);
          return true;
        });
      };
      const one = { name: 'images', datatype: 'UINT8', shape: [1, 28, 28] };
      await refused('ModelInfer', { model_name: 'nope', inputs: [{ ...one, contents: { uint_contents: Array.from(pixels.subarray(0, 784)) } }] }, 5, /no model "nope"/);
      await refused('ModelInfer', { model_name: MODELS[0], model_version: '7', inputs: [] }, 5, /no version "7"/);
      await refused('ModelInfer', { model_name: MODELS[0], inputs: [{ ...one, contents: { uint_contents: [1, 2, 3] } }] }, 3, /holds 3 values/);
      await refused('ModelInfer', { model_name: MODELS[0], inputs: [{ ...one }], raw_input_contents: [Buffer.alloc(783)] }, 3, /binary data holds 783 bytes/);
      await refused('ModelInfer', { model_name: MODELS[0], inputs: [{ ...one, datatype: 'INT8' }], raw_input_contents: [Buffer.alloc(784)] }, 3, /datatype INT8/);
      await refused('ModelInfer', { model_name: MODELS[0], inputs: [{ ...one, shape: [65, 28, 28] }], raw_input_contents: [Buffer.alloc(65 * 784)] }, 8, /at most 64/);
      await refused('ModelReady', { name: 'nope' }, 5, /no model/);
      // Still serving.
      const after = await client.call<{ outputs: { contents: { bytes_contents: Buffer[] } }[] }>('ModelInfer', { model_name: MODELS[1], inputs: [{ ...one, contents: { uint_contents: Array.from(pixels.subarray(0, 784)) } }] });
      assert.equal(after.outputs[1].contents.bytes_contents[0].toString(), evaluated.get(MODELS[1])!.classes[0]);
    } finally {
      client.close();
    }
  });

  test('statistics count each model\'s requests, images and passes', async () => {
    const before = jsonOf(await http(server, 'GET', `/v2/models/${MODELS[0]}/stats`)).model_stats[0];
    for (let i = 0; i < 5; i++) {
      const request = binaryInferRequest(pixels.subarray(0, 3 * 784), 'UINT8');
      assert.equal((await http(server, 'POST', `/v2/models/${MODELS[0]}/infer`, request.body, request.headers)).status, 200);
    }
    assert.equal((await http(server, 'POST', `/v2/models/${MODELS[0]}/infer`, { inputs: [] })).status, 400);
    const stats = jsonOf(await http(server, 'GET', `/v2/models/${MODELS[0]}/versions/1/stats`)).model_stats[0];
    assert.equal(stats.name, MODELS[0]);
    assert.equal(stats.version, '1');
    assert.equal(stats.inference_count - before.inference_count, 15);
    assert.equal(stats.inference_stats.success.count - before.inference_stats.success.count, 5);
    assert.equal(stats.inference_stats.fail.count - before.inference_stats.fail.count, 1);
    assert.ok(stats.execution_count - before.execution_count >= 1 && stats.execution_count - before.execution_count <= 5);
    assert.ok(stats.inference_stats.compute_infer.ns > before.inference_stats.compute_infer.ns);
    assert.ok(stats.last_inference >= before.last_inference && stats.last_inference <= Date.now());
    const all = jsonOf(await http(server, 'GET', '/v2/models/stats')).model_stats;
    assert.deepEqual(all.map((entry: { name: string }) => entry.name).sort(), [...MODELS].sort());
  });

  test('the model repository: index, unload (503 until loaded again), load, and a model folder added while serving', async () => {
    const index = jsonOf(await http(server, 'POST', '/v2/repository/index', {}));
    assert.deepEqual(index.map((entry: { name: string; state: string }) => [entry.name, entry.state]), MODELS.map((name) => [name, 'READY']).sort());
    const model = MODELS[0];
    assert.equal((await http(server, 'POST', `/v2/repository/models/${model}/unload`, {})).status, 200);
    const request = binaryInferRequest(pixels.subarray(0, 784), 'UINT8');
    const refused = await http(server, 'POST', `/v2/models/${model}/infer`, request.body, request.headers);
    assert.equal(refused.status, 503);
    assert.match(jsonOf(refused).error, /not loaded/);
    assert.equal((await http(server, 'GET', `/v2/models/${model}/ready`)).status, 503);
    const states = jsonOf(await http(server, 'POST', '/v2/repository/index', { ready: true }));
    assert.deepEqual(states.map((entry: { name: string }) => entry.name), MODELS.filter((name) => name !== model).sort());
    assert.equal((await http(server, 'POST', `/v2/repository/models/${model}/load`, {})).status, 200);
    assert.equal((await http(server, 'POST', `/v2/models/${model}/infer`, request.body, request.headers)).status, 200);

    // A model folder copied in while serving: listed, then loaded by name, then answering.
    cpSync(folderOf(MODELS[1]), join(repository, 'added'), { recursive: true });
    const listed = jsonOf(await http(server, 'POST', '/v2/repository/index'));
    assert.deepEqual(listed.find((entry: { name: string }) => entry.name === 'added'), { name: 'added', version: '1', state: 'UNAVAILABLE', reason: 'not loaded' });
    assert.equal((await http(server, 'POST', '/v2/models/added/infer', request.body, request.headers)).status, 503);
    assert.equal((await http(server, 'POST', '/v2/repository/models/added/load')).status, 200);
    const answer = await http(server, 'POST', '/v2/models/added/infer', { inputs: [{ name: 'images', shape: [N, 28, 28], datatype: 'UINT8', data: Array.from(pixels) }] });
    assert.deepEqual(jsonOf(answer).outputs[1].data, evaluated.get(MODELS[1])!.classes);

    // A folder that is no model is not one of the repository's; a model whose weights are cut
    // short fails to load, with the reason in the index; the server goes on.
    mkdirSync(join(repository, 'empty'));
    assert.equal((await http(server, 'POST', '/v2/repository/models/empty/load')).status, 404);
    cpSync(folderOf(MODELS[0]), join(repository, 'broken'), { recursive: true });
    truncateSync(join(repository, 'broken', 'model.safetensors'), 100);
    const broken = await http(server, 'POST', '/v2/repository/models/broken/load');
    assert.equal(broken.status, 400);
    assert.match(jsonOf(broken).error, /^model "broken" could not be loaded: .*model\.safetensors/);
    const reason = jsonOf(await http(server, 'POST', '/v2/repository/index')).find((entry: { name: string }) => entry.name === 'broken');
    assert.equal(reason.state, 'UNAVAILABLE');
    assert.match(reason.reason, /model\.safetensors/);
    assert.equal((await http(server, 'POST', '/v2/repository/models/nope/unload')).status, 404);
    assert.equal((await http(server, 'POST', `/v2/models/${MODELS[2]}/infer`, request.body, request.headers)).status, 200);
  });
});

describe('load while loading', () => {
  test('a model loaded and unloaded 30 times while 32 connections classify with another: no request fails, memory stays within 48 MB', async (t) => {
    const root = tempDir();
    cpSync(pipeline, join(root, 'small'), { recursive: true });
    cpSync(folderOf('small-cnn'), join(root, 'cycled'), { recursive: true });
    // WebAssembly: the backend whose memory leaked, and whose arena never shrinks.
    const server = await startServe(['--model-repository', root, '--backend', 'wasm']);
    const agent = new Agent({ keepAlive: true, maxSockets: 32 });
    const post = (path: string, body: Buffer, headers: Record<string, string>) =>
      new Promise<{ status: number; body: Buffer }>((resolve, reject) => {
        const request = httpRequest(`${server.url}${path}`, { method: 'POST', agent, headers: { ...headers, 'content-length': String(body.length) } }, (response) => {
          const chunks: Buffer[] = [];
          response.on('data', (chunk: Buffer) => chunks.push(chunk));
          response.on('end', () => resolve({ status: response.statusCode!, body: Buffer.concat(chunks) }));
          response.on('error', reject);
        });
        request.on('error', reject);
        request.end(body);
      });
    const expected = evaluated.get('small-mlp')!.classes;
    const one = (i: number) => binaryInferRequest(pixels.subarray(i * 784, (i + 1) * 784), 'UINT8', { outputs: [{ name: 'classes', parameters: { binary_data: false } }] });
    try {
      let running = true;
      let answered = 0;
      const failures: string[] = [];
      const connection = async (c: number) => {
        for (let k = 0; running; k++) {
          const i = (c * 7 + k) % N;
          const { body, headers } = one(i);
          const response = await post('/v2/models/small-mlp/infer', body, headers).catch((error: Error) => ({ status: 0, body: Buffer.from(error.message) }));
          if (response.status !== 200) failures.push(`${response.status} ${response.body.toString().slice(0, 200)}`);
          else if (JSON.parse(response.body.toString()).outputs[0].data[0] !== expected[i]) failures.push(`image ${i}: a wrong answer`);
          answered++;
        }
      };
      const connections = Array.from({ length: 32 }, (_, c) => connection(c));

      const cycledRequest = binaryInferRequest(pixels.subarray(0, 32 * 784), 'UINT8');
      const memory: number[] = [];
      for (let cycle = 0; cycle < 30; cycle++) {
        const load = await post('/v2/repository/models/cycled/load', Buffer.alloc(0), {});
        assert.equal(load.status, 200, load.body.toString());
        // The cycled model computes (its buffers allocated) before it is unloaded.
        const answer = await post('/v2/models/cycled/infer', cycledRequest.body, cycledRequest.headers);
        assert.equal(answer.status, 200, answer.body.toString());
        const unload = await post('/v2/repository/models/cycled/unload', Buffer.alloc(0), {});
        assert.equal(unload.status, 200, unload.body.toString());
        memory.push(server.residentBytes());
      }
      running = false;
      await Promise.all(connections);
      assert.deepEqual(failures.slice(0, 5), []);
      assert.ok(answered >= 320, `${answered} requests answered during 30 cycles`);
      // After 5 cycles' warm-up, the server's memory grows by at most 48 MB over the 25 others.
      const warm = memory[4];
      const growth = Math.max(...memory.slice(5)) - warm;
      t.diagnostic(`${answered} requests; resident memory ${(warm / 2 ** 20).toFixed(0)} MB after 5 cycles, at most ${(growth / 2 ** 20).toFixed(1)} MB more after 25 more`);
      assert.ok(growth < 48 * 2 ** 20, `resident memory grew ${(growth / 2 ** 20).toFixed(1)} MB from ${(warm / 2 ** 20).toFixed(0)} MB over 25 load/unload cycles`);
    } finally {
      agent.destroy();
      assert.equal(await server.stop(), 0);
    }
    assert.doesNotMatch(server.stderr(), /error answering/);
  });
});

describe('the repository, in process', () => {
  test('an unload waits for the requests in flight, which are answered; requests after it are refused (503) until the model is loaded again', async () => {
    // A host whose forward passes finish only when the test lets them.
    const releases: (() => void)[] = [];
    const unloaded: string[] = [];
    const host: ModelHost = {
      runtime: 'held',
      load: async (name) => ({
        name,
        kind: 'mlp',
        classNames: CLASS_NAMES,
        runtime: 'held',
        classify: (_pixels, count) => new Promise<Float32Array>((resolve) => releases.push(() => resolve(new Float32Array(count * 10).fill(0.1)))),
      }),
      unload: async (name) => void unloaded.push(name),
      close: async () => {},
    };
    const models = new ModelRepository(host, () => [{ name: 'm', dir: '' }], { maxBatch: 8, maxWaitMs: 0 });
    await models.loadAll();
    const request = () => {
      const { served, done } = models.acquire('m');
      return served.batcher.submit(new Uint8Array(784), 1).finally(done);
    };
    // One request in its forward pass, two waiting for the next.
    const inFlight = [request()];
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(releases.length, 1);
    inFlight.push(request(), request());
    const unloading = models.unload('m');
    assert.equal(models.state('m'), 'UNLOADING');
    assert.throws(() => models.acquire('m'), (error: ClientError) => error.statusCode === 503 && /is being unloaded/.test(error.message));
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.deepEqual(unloaded, [], 'not unloaded while requests are in flight');
    releases.shift()!();
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(releases.length, 1, 'the two waiting requests share the next pass');
    assert.deepEqual(unloaded, [], 'not unloaded while the second pass runs');
    releases.shift()!();
    for (const answer of await Promise.all(inFlight)) assert.equal(answer.length, 10);
    await unloading;
    assert.deepEqual(unloaded, ['m']);
    assert.equal(models.state('m'), 'UNAVAILABLE');
    assert.throws(() => models.acquire('m'), (error: ClientError) => error.statusCode === 503 && /not loaded/.test(error.message));
    await models.load('m');
    assert.equal(models.state('m'), 'READY');
    await models.close();
  });
});
