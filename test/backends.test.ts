import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { UsageError } from '../src/errors.ts';
import { loadKernels } from '../src/kernels/index.ts';
import { nativeBuildPresent } from '../src/kernels/native/node.ts';

test('auto uses the native backend when it is built', { skip: nativeBuildPresent() ? false : 'the native backend is not built here' }, async () => {
  const messages: string[] = [];
  const kernels = await loadKernels('auto', { threads: 1, onFallback: (message) => messages.push(message) });
  assert.equal(kernels.name, 'native');
  assert.match(kernels.description, /^native \(OpenBLAS \S+, 1 thread\)$/);
  assert.deepEqual(messages, []);
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
