/**
 * A promoted trial trains like a fresh one: resumed from its checkpoint, every tensor its
 * kernels touch comes from the backend's allocate (weights, gradients, the optimiser's moments,
 * the best weights), as in a job that starts from nothing, and it computes what an unbroken run
 * computes. A resumed job handing a kernel host arrays of its own (a checkpoint's, say) would
 * make a backend whose tensors live in its own memory copy them at every call.
 *
 * And what a trial carries from rung to rung holds no subnormal number: a weight or moment that
 * decays geometrically would otherwise settle among the subnormals (Adam's first moment, once
 * its gradient stops, rounds to a fixed point there instead of reaching 0), more of them the
 * longer a trial trains, and every later product with one takes the processor's slow path.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { jsKernels, type Kernels } from '../src/kernels/index.ts';
import { loadNativeKernels, nativeBuildPresent } from '../src/kernels/native/node.ts';
import { loadWasmKernels, wasmBuildPresent } from '../src/kernels/wasm/node.ts';
import { KERNELS, parseArgs } from '../src/kernels/spec.ts';
import { baseConfig, searchSettings } from '../src/search/settings.ts';
import { trialConfig } from '../src/search/space.ts';
import { TRIAL_CHECKPOINT, TrialRunner, type TrialJob } from '../src/search/trial.ts';
import { decodeCheckpoint, singleFileCheckpointer } from '../src/training/checkpoint.ts';
import { REAL_DATA_DIR, tempDir } from './helpers/idx-files.ts';

/**
 * The backend, with a count of the float tensors its kernels were given that did not come from
 * its allocate (by the memory behind them: a subarray shares its tensor's).
 */
function watchedKernels(kernels: Kernels): { kernels: Kernels; foreign: Map<string, number>; calls: { count: number } } {
  const owned = new WeakSet<ArrayBufferLike>();
  const foreign = new Map<string, number>();
  const calls = { count: 0 };
  const watched: Record<string, unknown> = {
    ...kernels,
    allocate(length: number) {
      const tensor = kernels.allocate(length) as unknown as Float32Array;
      owned.add(tensor.buffer);
      return tensor;
    },
  };
  for (const [name, spec] of Object.entries(KERNELS)) {
    const floats = parseArgs(spec.args).filter((arg) => arg.type === 'floats' || arg.type === 'floats out').map((arg) => arg.name);
    const kernel = (kernels as unknown as Record<string, (args: Record<string, unknown>) => void>)[name];
    watched[name] = (args: Record<string, unknown>) => {
      calls.count++;
      for (const arg of floats) {
        if (!owned.has((args[arg] as Float32Array).buffer)) foreign.set(`${name}.${arg}`, (foreign.get(`${name}.${arg}`) ?? 0) + 1);
      }
      kernel(args);
    };
  }
  return { kernels: watched as unknown as Kernels, foreign, calls };
}

const backends: [string, () => Kernels | Promise<Kernels>][] = [['js', () => jsKernels]];
// The WebAssembly backend is where a tensor of its own matters most: any other array is copied into its memory and back at every call.
if (wasmBuildPresent()) backends.push(['wasm', () => loadWasmKernels({ threads: 1 })]);
if (nativeBuildPresent()) backends.push(['native', () => loadNativeKernels({ threads: 1 })]);

for (const [backend, load] of backends) {
  for (const optimizer of ['adam', 'sgd'] as const) {
    test(`${backend}, ${optimizer}: a trial resumed from its checkpoint trains on the backend's tensors, as a fresh one does, and computes what an unbroken run does`, { timeout: 120_000 }, async () => {
      const settings = searchSettings('mlp', { trials: 1, minEpochs: 1, maxEpochs: 3, trainLimit: 600 });
      const config = trialConfig('mlp', baseConfig(settings), { hidden: 32, dropout: 0.2, batchSize: 50, optimizer, learningRate: 0.003, weightDecay: 1e-4 });
      const job = (dir: string, rung: number, stopAfterEpoch: number): TrialJob => ({ trial: 0, rung, model: 'mlp', config, stopAfterEpoch, dir });
      const { kernels, foreign, calls } = watchedKernels(await load());
      const runner = new TrialRunner(kernels, { data: { dataDir: REAL_DATA_DIR, download: false } });

      const staged = tempDir();
      const checkpoint = singleFileCheckpointer(join(staged, TRIAL_CHECKPOINT));
      await runner.run(job(staged, 0, 1), checkpoint);
      assert.ok(calls.count > 0);
      assert.deepEqual(Object.fromEntries(foreign), {}, 'a fresh job gives its kernels only tensors of the backend');
      calls.count = 0;
      const resumed = await runner.run(job(staged, 1, 3), singleFileCheckpointer(join(staged, TRIAL_CHECKPOINT)));
      assert.ok(calls.count > 0, 'the resumed job trained');
      assert.deepEqual(Object.fromEntries(foreign), {}, 'a resumed job gives its kernels only tensors of the backend');

      const unbroken = tempDir();
      const whole = await runner.run(job(unbroken, 1, 3), singleFileCheckpointer(join(unbroken, TRIAL_CHECKPOINT)));
      const figures = (records: typeof whole.result.history) => records.map(({ trainLoss, valLoss, valAccuracy }) => ({ trainLoss, valLoss, valAccuracy }));
      assert.deepEqual(figures(resumed.result.history), figures(whole.result.history));
    });
  }
}

/** How many of the values are subnormal: non-zero and smaller in magnitude than float32's smallest normal number, 2^-126. */
function subnormals(values: Float32Array): number {
  let count = 0;
  for (const value of values) if (value !== 0 && Math.abs(value) < 2 ** -126) count++;
  return count;
}

for (const [backend, load] of backends) {
  test(`${backend}: a trial's checkpoint after an epoch on all 48,000 images holds no subnormal number (weights, best weights, Adam's moments; SGD's velocity)`, { timeout: 300_000 }, async () => {
    const kernels = await load();
    const runner = new TrialRunner(kernels, { data: { dataDir: REAL_DATA_DIR, download: false } });
    // A narrow MLP, so that an epoch costs little. On all the images, an input pixel that is non-zero in a few of them
    // leaves its weights without a gradient for a thousand steps and more: before the optimisers flushed them, Adam's
    // first moment held about a thousand subnormal numbers after this epoch (4% of it).
    for (const optimizer of ['adam', 'sgd'] as const) {
      const settings = searchSettings('mlp', { trials: 1, minEpochs: 1, maxEpochs: 3 });
      const config = trialConfig('mlp', baseConfig(settings), { hidden: 32, dropout: 0.2, batchSize: 32, optimizer, learningRate: 0.001, weightDecay: 0 });
      const dir = tempDir();
      const file = join(dir, TRIAL_CHECKPOINT);
      await runner.run({ trial: 0, rung: 0, model: 'mlp', config, stopAfterEpoch: 1, dir }, singleFileCheckpointer(file));
      const state = decodeCheckpoint(readFileSync(file), file);
      const found = {
        values: subnormals(state.values),
        bestValues: subnormals(state.bestValues),
        ...Object.fromEntries(state.optimizer.buffers.map((buffer, i) => [`optimizer.${i}`, subnormals(buffer)])),
      };
      assert.deepEqual(found, Object.fromEntries(Object.keys(found).map((name) => [name, 0])), `${optimizer}: subnormal numbers in the checkpoint`);
    }
  });
}
