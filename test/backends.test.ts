import assert from 'node:assert/strict';
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
