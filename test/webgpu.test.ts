// The WebGPU backend on SwiftShader (Debian's chromium ships its Vulkan driver: WebGPU on the
// CPU), which CI installs: the shared kernel suite, for both ways the products run (tiled for
// GPUs, direct for SwiftShader itself), a training run against the native backend's figures,
// and models read across backends. SwiftShader is about a hundred times slower than the native
// backend here, and the default CNN takes two minutes a step on it: the training runs use the
// default CNN's layers at an eighth of its width.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { nativeBuildPresent } from '../src/kernels/native/node.ts';
import { loadWebGpuKernels, SWIFTSHADER_DRIVER } from '../src/kernels/webgpu/node.ts';
import { evaluateSavedModel } from '../src/runs/evaluate.ts';
import { trainCnn } from '../src/runs/train.ts';
import { isOneLineError, runCli } from './helpers/cli.ts';
import { tempDir } from './helpers/idx-files.ts';
import { kernelSuite } from './helpers/kernel-suite.ts';

const required = process.env.FMNIST_REQUIRE_BROWSER === '1';
if (!existsSync(SWIFTSHADER_DRIVER) && required) throw new Error(`SwiftShader's Vulkan driver is missing (${SWIFTSHADER_DRIVER}); install chromium`);
process.env.VK_DRIVER_FILES ??= SWIFTSHADER_DRIVER;
const skip = existsSync(SWIFTSHADER_DRIVER) ? false : 'no SwiftShader here (apt-get install chromium libvulkan1)';

if (!skip) {
  kernelSuite(await loadWebGpuKernels({ products: 'tiled' }));
  kernelSuite(await loadWebGpuKernels({ products: 'direct' }));
}

/** A CNN of the default layers (batch normalisation, flips and shifts included) at an eighth of the width, on 2,000 images, validated on 3,000. */
const NARROW_CNN = { trainLimit: 2000, validationFraction: 0.05, epochs: 1, batchSize: 32, learningRate: 0.01, channels: [4, 4, 8, 8, 8], features: 16, testFlip: false, seed: 11 };

test('webgpu trains a CNN to the native backend\'s figures, names its adapter, and each backend scores the other\'s saved model', { skip: skip || (nativeBuildPresent() ? false : 'the native backend is not built here') }, async () => {
  const [gpuDir, cpuDir] = [tempDir(), tempDir()];
  const gpu = await trainCnn({ ...NARROW_CNN, backend: 'webgpu' }, { outDir: gpuDir });
  const cpu = await trainCnn({ ...NARROW_CNN, backend: 'native', threads: 2 }, { outDir: cpuDir });
  const [g, c] = [gpu.history[0], cpu.history[0]];
  assert.ok(c.valAccuracy > 0.5, `the run learns something (native: ${c.valAccuracy})`);
  // 63 steps at a high learning rate: runs that differ only in the last bits of their sums part
  // ways. The wasm and native backends, on this run with seeds 11, 12 and 13, differ by 0.61,
  // 1.49 and 0.67 points of validation accuracy and 0.03 to 1.28 of test accuracy; the GPU is
  // held to the same (2 points). Agreement within 0.3 points is a full run's (docs/performance.md).
  assert.ok(Math.abs(g.valAccuracy - c.valAccuracy) <= 0.02, `validation accuracy ${g.valAccuracy} on webgpu against ${c.valAccuracy} on native`);
  assert.ok(Math.abs(gpu.test.accuracy - cpu.test.accuracy) <= 0.02, `test accuracy ${gpu.test.accuracy} against ${cpu.test.accuracy}`);
  assert.ok(Math.abs(g.trainLoss - c.trainLoss) <= 0.01 * c.trainLoss, `training loss ${g.trainLoss} against ${c.trainLoss}`);
  const metrics = JSON.parse(readFileSync(join(gpuDir, 'metrics.json'), 'utf8'));
  assert.match(metrics.backend, /^webgpu \(google swiftshader/, 'the adapter is named where the figures are');

  // The model trained on the GPU, scored by fmnist evaluate on the CPU, and the reverse.
  const onCpu = runCli(['evaluate', '--model', gpuDir, '--backend', 'native']);
  assert.equal(onCpu.status, 0, onCpu.stderr);
  const scored = Number(/^test accuracy: ([\d.]+)%/m.exec(onCpu.stdout)![1]) / 100;
  assert.ok(Math.abs(scored - gpu.test.accuracy) <= 0.001, `the webgpu model scores ${scored} on native against ${gpu.test.accuracy}`);
  const onGpu = await evaluateSavedModel(cpuDir, { backend: 'webgpu' });
  assert.ok(Math.abs(onGpu.test.accuracy - cpu.test.accuracy) <= 0.001, `the native model scores ${onGpu.test.accuracy} on webgpu against ${cpu.test.accuracy}`);
});

test('--backend webgpu without a GPU driver stops with one sentence that says what is missing and what to use instead', () => {
  const result = runCli(['train', 'mlp', '--backend', 'webgpu', '--epochs', '1', '--train-limit', '500', '--out', join(tempDir(), 'run')], { VK_DRIVER_FILES: '/nonexistent/icd.json' });
  assert.equal(result.status, 2, result.stderr);
  assert.ok(isOneLineError(result.stderr), result.stderr);
  assert.match(result.stderr, /webgpu backend found no GPU: the Vulkan driver named by VK_DRIVER_FILES does not exist \(\/nonexistent\/icd\.json\); choose --backend native or wasm/);
});
