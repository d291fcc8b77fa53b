// The inference server under load (`npm run bench -- serve`): `fmnist serve` started as its own
// process on 127.0.0.1 (port 0, gRPC on another), loaded from this process with one-image infer
// requests (a real test image) to the CNN and to the MLP, in each of the protocol's three forms:
// JSON (UINT8 values), binary (the JSON header, then the 784 bytes: Triton's clients' default)
// and gRPC (raw_input_contents, over one HTTP/2 connection as a gRPC client opens it); at 1 and
// at 64 connections (for gRPC, calls in flight), for 20 s each after 3 s of warm-up; every run
// bounded in time and in count. HTTP load comes from autocannon, gRPC load from a client built
// by @grpc/grpc-js from the server's proto file, each call timed here.
//
// The models: those of FMNIST_BENCH_MODELS (a pipeline folder, whose cnn/ and mlp/ are used),
// else runs/bench-serve/{cnn,mlp}, trained once there and reused: the default architectures on
// few images (`fmnist train cnn --train-limit 2000 --epochs 1`, `fmnist train mlp
// --train-limit 5000 --epochs 2`), since the speed of a forward pass does not depend on how
// well the weights were trained.
//
// Besides the figures the issue asks for, each line gives the mean batch size and the CPU seconds
// the server's process used, and the requests per CPU second: on a machine shared with other
// work the requests per second fall with the CPU the server gets, the requests per CPU second
// much less.
//
// FMNIST_BENCH_SERVE_FLAGS adds flags to `fmnist serve` (e.g. "--threads 1 --max-wait 5");
// FMNIST_BENCH_SECONDS changes the 20 s; FMNIST_BENCH_PROTOCOLS chooses among json,binary,grpc.
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import autocannon from 'autocannon';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadTestSet } from '../src/data/load.ts';
import { locateData } from '../src/data/locate.ts';
import { PROTO_PATH } from '../src/serve/grpc.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CLI = join(ROOT, 'src/cli/main.ts');
const cli = (args: string[]) => [process.execPath, ['--import', 'tsx', CLI, ...args]] as const;

/** Model folders to serve, by name: reused when they exist, trained otherwise. */
function benchModels(): { cnn: string; mlp: string } {
  const given = process.env.FMNIST_BENCH_MODELS;
  if (given) return { cnn: join(given, 'cnn'), mlp: join(given, 'mlp') };
  const dir = join(ROOT, 'runs', 'bench-serve');
  const training: Record<'cnn' | 'mlp', string[]> = {
    cnn: ['train', 'cnn', '--train-limit', '2000', '--epochs', '1'],
    mlp: ['train', 'mlp', '--train-limit', '5000', '--epochs', '2'],
  };
  for (const model of ['cnn', 'mlp'] as const) {
    const out = join(dir, model);
    if (existsSync(join(out, 'model.json'))) continue;
    process.stderr.write(`bench serve: training a quick ${model} into ${out}\n`);
    const [command, args] = cli([...training[model], '--out', out, '--no-report']);
    const result = spawnSync(command, args, { stdio: ['ignore', 'ignore', 'inherit'] });
    if (result.status !== 0) throw new Error(`training the bench's ${model} failed`);
  }
  return { cnn: join(dir, 'cnn'), mlp: join(dir, 'mlp') };
}

/** Starts `fmnist serve` on 127.0.0.1, ports 0; resolves with the process, its base URL and its gRPC port once it listens. */
function startServer(modelDir: string, flags: string[]): Promise<{ server: ChildProcess; url: string; grpcPort: number }> {
  const [command, args] = cli(['serve', '--model', modelDir, '--host', '127.0.0.1', '--port', '0', '--grpc-port', '0', ...flags]);
  const server = spawn(command, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let output = '';
    server.stdout!.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      const http = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(output);
      const rpc = /listening for gRPC on 127\.0\.0\.1:(\d+)/.exec(output);
      if (http && rpc) resolve({ server, url: http[1], grpcPort: Number(rpc[1]) });
    });
    server.once('exit', (code) => reject(new Error(`fmnist serve exited (code ${code}) before listening`)));
  });
}

/** What one load run measured, as autocannon reports it. */
interface LoadResult {
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
  answered: number;
  seconds: number;
}

/** HTTP load from autocannon: `connections` connections, each sending the next request when the last is answered. */
async function httpLoad(url: string, headers: Record<string, string>, body: string | Buffer, connections: number, duration: number): Promise<LoadResult> {
  const result = await autocannon({
    url,
    method: 'POST',
    headers,
    body,
    connections,
    duration,
    // A ceiling on the count as well as the time: far above what 2 cores answer in `duration`.
    maxOverallRequests: Math.max(connections, 100_000 * duration),
    timeout: 10,
  });
  return { requestsPerSecond: Math.round(result.requests.average), p50Ms: result.latency.p50, p99Ms: result.latency.p99, errors: result.errors + result.non2xx, answered: result['2xx'], seconds: result.duration };
}

/** gRPC load: `concurrency` calls in flight over one channel, each followed by the next when answered, for `duration` seconds. */
async function grpcLoad(port: number, request: object, concurrency: number, duration: number): Promise<LoadResult> {
  const definition = protoLoader.loadSync(PROTO_PATH, { keepCase: true, longs: Number, enums: String, defaults: true, oneofs: true });
  const Service = (grpc.loadPackageDefinition(definition).inference as grpc.GrpcObject).GRPCInferenceService as grpc.ServiceClientConstructor;
  const client = new Service(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  const infer = () =>
    new Promise<void>((resolve, reject) => {
      (client.ModelInfer as (request: object, options: object, callback: (error: grpc.ServiceError | null) => void) => void).call(client, request, { deadline: Date.now() + 10_000 }, (error) => (error ? reject(error) : resolve()));
    });
  const latencies: number[] = [];
  let errors = 0;
  const started = performance.now();
  const end = started + duration * 1000;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < end && latencies.length < 100_000 * duration) {
        const sent = performance.now();
        try {
          await infer();
          latencies.push(performance.now() - sent);
        } catch {
          errors++;
        }
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  client.close();
  latencies.sort((a, b) => a - b);
  const percentile = (p: number) => Number((latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))] ?? 0).toFixed(2));
  return { requestsPerSecond: Math.round(latencies.length / seconds), p50Ms: percentile(50), p99Ms: percentile(99), errors, answered: latencies.length, seconds: Number(seconds.toFixed(1)) };
}

async function stopServer(server: ChildProcess): Promise<void> {
  const exited = new Promise((resolve) => server.once('exit', resolve));
  server.kill('SIGTERM');
  await exited;
}

/**
 * From the server's /metrics: images and forward passes so far (for the mean batch size) and the
 * CPU seconds its process has used (for the requests per CPU second, a figure that depends less
 * on what else the machine runs than the requests per second do).
 */
async function serverCounters(url: string): Promise<{ images: number; passes: number; cpuSeconds: number }> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const read = (name: string) => Number(new RegExp(`^${name}(\\{[^}]*\\})? (\\S+)$`, 'm').exec(text)?.[2] ?? 0);
  return { images: read('fmnist_batch_size_images_sum'), passes: read('fmnist_batch_size_images_count'), cpuSeconds: read('fmnist_process_cpu_seconds_total') };
}

const PROTOCOLS = ['json', 'binary', 'grpc'] as const;
type Protocol = (typeof PROTOCOLS)[number];

export async function serveBench(emit: (record: object) => void): Promise<void> {
  const seconds = Number(process.env.FMNIST_BENCH_SECONDS ?? 20);
  const flags = (process.env.FMNIST_BENCH_SERVE_FLAGS ?? '').split(/\s+/).filter((flag) => flag !== '');
  const protocols = (process.env.FMNIST_BENCH_PROTOCOLS ?? PROTOCOLS.join(',')).split(',') as Protocol[];
  const unknown = protocols.filter((protocol) => !PROTOCOLS.includes(protocol));
  if (unknown.length > 0) throw new Error(`FMNIST_BENCH_PROTOCOLS names ${unknown.join(', ')}; it takes ${PROTOCOLS.join(', ')}`);
  const models = benchModels();
  const test = loadTestSet((await locateData({ download: false })).dir).data;
  const image = test.pixels.subarray(0, 784);
  const input = { name: 'images', shape: [1, 28, 28], datatype: 'UINT8' };
  const jsonBody = JSON.stringify({ inputs: [{ ...input, data: Array.from(image) }] });
  const header = Buffer.from(JSON.stringify({ inputs: [{ ...input, parameters: { binary_data_size: 784 } }], parameters: { binary_data_output: true } }));
  const binaryBody = Buffer.concat([header, image]);
  for (const model of ['cnn', 'mlp'] as const) {
    const { server, url, grpcPort } = await startServer(models[model], flags);
    try {
      // A model folder is served under its folder's name.
      const target = `${url}/v2/models/${model}/infer`;
      const forms: Record<Protocol, (connections: number, duration: number) => Promise<LoadResult>> = {
        json: (connections, duration) => httpLoad(target, { 'content-type': 'application/json' }, jsonBody, connections, duration),
        binary: (connections, duration) =>
          httpLoad(target, { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(header.length) }, binaryBody, connections, duration),
        grpc: (connections, duration) => grpcLoad(grpcPort, { model_name: model, inputs: [input], raw_input_contents: [Buffer.from(image)] }, connections, duration),
      };
      const check = await fetch(target, { method: 'POST', headers: { 'content-type': 'application/json' }, body: jsonBody });
      if (check.status !== 200) throw new Error(`the bench's request got ${check.status}: ${await check.text()}`);
      for (const protocol of protocols) {
        for (const connections of [1, 64]) {
          const load = forms[protocol];
          await load(connections, 3);
          const before = await serverCounters(url);
          const result = await load(connections, seconds);
          const after = await serverCounters(url);
          if (result.answered === 0) throw new Error(`${protocol} at ${connections} connections: no request was answered`);
          const cpuSeconds = after.cpuSeconds - before.cpuSeconds;
          emit({
            bench: 'serve',
            model,
            protocol,
            connections,
            requestsPerSecond: result.requestsPerSecond,
            p50Ms: result.p50Ms,
            p99Ms: result.p99Ms,
            errors: result.errors,
            meanBatch: Number(((after.images - before.images) / Math.max(1, after.passes - before.passes)).toFixed(1)),
            serverCpuSeconds: Number(cpuSeconds.toFixed(1)),
            requestsPerServerCpuSecond: Math.round(result.answered / cpuSeconds),
            seconds: result.seconds,
            serveFlags: flags.join(' '),
          });
        }
      }
    } finally {
      await stopServer(server);
    }
  }
}
