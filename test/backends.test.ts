import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { UsageError } from '../src/errors.ts';
import { loadKernels } from '../src/kernels/index.ts';
import { nativeBuildPresent, openBlasCoreFor } from '../src/kernels/native/node.ts';

test('auto uses the native backend when it is built', { skip: nativeBuildPresent() ? false : 'the native backend is not built here' }, async () => {
  const messages: string[] = [];
  const kernels = await loadKernels('auto', { threads: 1, onFallback: (message) => messages.push(message) });
  assert.equal(kernels.name, 'native');
  assert.match(kernels.description, /^native \(OpenBLAS \S+, 1 thread\)$/);
  assert.deepEqual(messages, []);
});

test('OpenBLAS is given its AVX2 kernels on every x86-64 CPU with AVX2 and FMA, whatever else it has, and nothing is named elsewhere', () => {
  const zen3 = 'vendor_id\t: AuthenticAMD\nflags\t\t: fpu sse2 avx fma avx2 bmi2\n';
  const zen4 = 'vendor_id\t: AuthenticAMD\nflags\t\t: fpu sse2 avx fma avx2 avx512f avx512vl avx512_bf16\n';
  const intel = 'vendor_id\t: GenuineIntel\nflags\t\t: fpu sse2 avx fma avx2 avx512f avx512vl\n';
  for (const cpuinfo of [zen3, zen4, intel]) assert.equal(openBlasCoreFor(cpuinfo, 'x64'), 'Haswell');
  assert.equal(openBlasCoreFor('flags\t\t: fpu sse2 avx\n', 'x64'), undefined);
  assert.equal(openBlasCoreFor(zen4, 'arm64'), undefined);
});

test('without the native addon, auto falls back to wasm and says why, once', async () => {
  const messages: string[] = [];
  const kernels = await loadKernels('auto', { threads: 1, nativeAddonPath: '/nonexistent/fmnist_native.node', onFallback: (m) => messages.push(m) });
  assert.equal(kernels.name, 'wasm');
  assert.deepEqual(messages, ['using the wasm backend: the native backend is not built (it needs libopenblas-dev at install time)']);
});

test('asking for the native backend where it is missing is a clear usage error', async () => {
  await assert.rejects(
    loadKernels('native', { nativeAddonPath: '/nonexistent/fmnist_native.node' }),
    (error: unknown) => error instanceof UsageError && /not built; install libopenblas-dev/.test(error.message),
  );
});

test(
  'the native thread team hands out its first task however soon after it starts (no deadlock)',
  { skip: nativeBuildPresent() ? false : 'the native backend is not built here' },
  () => {
    // Each load restarts the team; a worker that missed a task handed out before it first looked
    // left the caller waiting forever. A child process, so that a hang fails the test by its timeout.
    const script = `
      import { loadNativeKernels } from './src/kernels/native/node.ts';
      const shape = { batch: 4, height: 8, width: 8, inChannels: 8, outChannels: 8, kernelSize: 3 };
      let kernels = loadNativeKernels({ threads: 2 });
      const inp = kernels.allocate(4 * 64 * 8), weight = kernels.allocate(9 * 64), out = kernels.allocate(4 * 64 * 8);
      for (let i = 0; i < 1000; i++) {
        kernels = loadNativeKernels({ threads: 2 + (i % 2) });
        kernels.conv2d({ out, inp, weight, ...shape });
      }
      console.log('done');
    `;
    const result = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(result.signal, null, 'the team deadlocked (killed after 60 s)');
    assert.equal(result.stdout.trim(), 'done', result.stderr);
  },
);
