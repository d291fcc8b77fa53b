// The inference server under load (`npm run bench -- serve`): `fmnist serve` started as its own
// process on 127.0.0.1 (port 0), loaded by autocannon from this process with one-image infer
// requests (a real test image, UINT8 JSON) to the CNN and to the MLP, at 1 and at 64
// connections, for 20 s each after 3 s of warm-up; every run bounded in time and in count.
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
// FMNIST_BENCH_SECONDS changes the 20 s.
import autocannon from 'autocannon';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadTestSet } from '../src/data/load.ts';
import { locateData } from '../src/data/locate.ts';

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

/** Starts `fmnist serve` on 127.0.0.1, port 0; resolves with the process and its base URL once it listens. */
function startServer(modelDir: string, flags: string[]): Promise<{ server: ChildProcess; url: string }> {
  const [command, args] = cli(['serve', '--model', modelDir, '--host', '127.0.0.1', '--port', '0', ...flags]);
  const server = spawn(command, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let output = '';
    server.stdout!.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      const match = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(output);
      if (match) resolve({ server, url: match[1] });
    });
    server.once('exit', (code) => reject(new Error(`fmnist serve exited (code ${code}) before listening`)));
  });
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

export async function serveBench(emit: (record: object) => void): Promise<void> {
  const seconds = Number(process.env.FMNIST_BENCH_SECONDS ?? 20);
  const flags = (process.env.FMNIST_BENCH_SERVE_FLAGS ?? '').split(/\s+/).filter((flag) => flag !== '');
  const models = benchModels();
  const test = loadTestSet((await locateData({ download: false })).dir).data;
  const body = JSON.stringify({ inputs: [{ name: 'images', shape: [1, 28, 28], datatype: 'UINT8', data: Array.from(test.pixels.subarray(0, 784)) }] });
  for (const model of ['cnn', 'mlp'] as const) {
    const { server, url } = await startServer(models[model], flags);
    try {
      const name = model; // a model folder is served under its folder's name
      const target = `${url}/v2/models/${name}/infer`;
      const check = await fetch(target, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
      if (check.status !== 200) throw new Error(`the bench's request got ${check.status}: ${await check.text()}`);
      for (const connections of [1, 64]) {
        const load = (duration: number) =>
          autocannon({
            url: target,
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body,
            connections,
            duration,
            // A ceiling on the count as well as the time: far above what 2 cores answer in `duration`.
            maxOverallRequests: Math.max(connections, 100_000 * duration),
            timeout: 10,
          });
        await load(3);
        const before = await serverCounters(url);
        const result = await load(seconds);
        const after = await serverCounters(url);
        const cpuSeconds = after.cpuSeconds - before.cpuSeconds;
        emit({
          bench: 'serve',
          model,
          connections,
          requestsPerSecond: Math.round(result.requests.average),
          p50Ms: result.latency.p50,
          p99Ms: result.latency.p99,
          errors: result.errors + result.non2xx,
          meanBatch: Number(((after.images - before.images) / Math.max(1, after.passes - before.passes)).toFixed(1)),
          serverCpuSeconds: Number(cpuSeconds.toFixed(1)),
          requestsPerServerCpuSecond: Math.round(result['2xx'] / cpuSeconds),
          seconds: result.duration,
          serveFlags: flags.join(' '),
        });
      }
    } finally {
      await stopServer(server);
    }
  }
}
