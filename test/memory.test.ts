// Memory that stays bounded however long a model serves: every path that classifies gives its
// buffers back (or reuses them), on every backend. The WebAssembly backend's memory never
// shrinks, so there a leak is exact: the memory's size and the bytes its buffers hold must not
// move after the first calls. Elsewhere the garbage collector owns the memory, and the process's
// resident size must stay within a bound.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { loadTestSet } from '../src/data/load.ts';
import { loadClassifiers, type ImageClassifier } from '../src/inference/classifier.ts';
import { loadKernels, type BackendName } from '../src/kernels/index.ts';
import { nativeBuildPresent } from '../src/kernels/native/node.ts';
import type { WasmKernels } from '../src/kernels/wasm/backend.ts';
import { runPipeline } from '../src/runs/pipeline.ts';
import { REAL_DATA_DIR, tempDir } from './helpers/idx-files.ts';

const overrides = {
  mlp: { trainLimit: 5000, epochs: 1, hidden: 64 },
  cnn: { trainLimit: 1000, epochs: 1, channels: [4, 4, 8, 8, 8], features: 16 },
  featuresMlp: { epochs: 1, hidden: 32 },
};
const pipeline = join(tempDir(), 'pipeline');
await runPipeline({ seed: 5, overrides }, { outDir: pipeline });
const pixels = loadTestSet(REAL_DATA_DIR).data.pixels;
const image = (i: number) => pixels.subarray((i % 1000) * 784, ((i % 1000) + 1) * 784);

/** The process's resident memory in MiB. */
const residentMiB = () => process.memoryUsage().rss / 2 ** 20;
/** Most that the resident memory may grow between the end of the warm-up and the last call. */
const RESIDENT_GROWTH_MIB = 100;
const WARM_UP_CALLS = 500;

/** `calls` single-image classifications spread over the classifiers in turn; checks the memory after the warm-up against the end. */
async function classifyOneByOne(backend: BackendName, classifiers: ImageClassifier[], calls: number, usage: () => unknown): Promise<void> {
  let warm: { usage: unknown; resident: number } | null = null;
  for (let i = 0; i < calls; i++) {
    const probabilities = await classifiers[i % classifiers.length].classify(image(i), 1);
    assert.equal(probabilities.length, 10);
    if (i === WARM_UP_CALLS) warm = { usage: usage(), resident: residentMiB() };
  }
  assert.deepEqual(usage(), warm!.usage, `${backend}: the WebAssembly memory in use moved after ${WARM_UP_CALLS} calls`);
  const growth = residentMiB() - warm!.resident;
  assert.ok(growth < RESIDENT_GROWTH_MIB, `${backend}: resident memory grew ${growth.toFixed(0)} MiB over ${calls} calls`);
}

const backends: BackendName[] = ['js', 'wasm', ...(nativeBuildPresent() ? (['native'] as const) : [])];

for (const backend of backends) {
  test(`${backend}: 100,000 single-image calls of the MLP and 3,000 of each model of a pipeline hold memory bounded`, async () => {
    const kernels = await loadKernels(backend, { threads: 1 });
    const usage = () => (kernels.name === 'wasm' ? (kernels as WasmKernels).usage() : null);
    const [mlp, ...cnnModels] = await loadClassifiers(pipeline, kernels);
    await classifyOneByOne(backend, [mlp], 100_000, usage);
    await classifyOneByOne(backend, cnnModels, 6000, usage);
  });
}

test('fmnist serve --backend wasm answers 20,000 one-image requests to the CNN without an error, its memory bounded', async () => {
  const cli = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));
  const server = spawn(process.execPath, ['--import', 'tsx', cli, 'serve', '--model', pipeline, '--backend', 'wasm', '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  server.stderr.on('data', (chunk) => (stderr += chunk));
  try {
    const port = await new Promise<number>((resolve, reject) => {
      let stdout = '';
      server.stdout.on('data', (chunk) => {
        stdout += chunk;
        const match = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(stdout);
        if (match) resolve(Number(match[1]));
      });
      server.on('exit', () => reject(new Error(`serve exited early: ${stderr}`)));
    });
    const body = JSON.stringify({ inputs: [{ name: 'images', shape: [1, 28, 28], datatype: 'UINT8', data: Array.from(image(0)) }] });
    const load = (amount: number) =>
      autocannon({ url: `http://127.0.0.1:${port}/v2/models/cnn/infer`, method: 'POST', headers: { 'content-type': 'application/json' }, body, connections: 8, amount });
    const first = await load(2000);
    // The forward passes run on the server's classifier thread, whose memory is the process's.
    const residentAfterWarmUp = serverResidentMiB(server.pid!);
    const rest = await load(18_000);
    for (const result of [first, rest]) {
      assert.equal(result.errors + result.timeouts, 0, `connection errors or time-outs; server: ${stderr}`);
      assert.equal(result['2xx'], result.requests.sent, `non-2xx answers: ${result.non2xx}; server: ${stderr}`);
    }
    assert.equal(first['2xx'] + rest['2xx'], 20_000);
    const growth = serverResidentMiB(server.pid!) - residentAfterWarmUp;
    assert.ok(growth < RESIDENT_GROWTH_MIB, `the server's resident memory grew ${growth.toFixed(0)} MiB over 18,000 requests`);
  } finally {
    server.kill('SIGTERM');
  }
});

/** A process's resident memory in MiB, from /proc. */
function serverResidentMiB(pid: number): number {
  const match = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(match![1]) / 1024;
}
