// The kernel suite every backend runs: each kernel against an independent float64 definition
// (or, where the definition is the reference's own rounding, against the reference's bits),
// on odd shapes and on arrays large enough for the threaded backends to split. Kernels are
// called through `run`, which copies the host's arrays into tensors of the backend and reads
// the written ones back, so the same cases run where tensors live in a GPU's memory.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { jsKernels, type KernelArgs, type Kernels, type Tensor } from '../../src/kernels/index.ts';
import { hasWinogradFilters, KERNELS, parseArgs, preparedConv2dFloats, type KernelName } from '../../src/kernels/spec.ts';
import { maxRelativeError, randomArray, Rng } from './random.ts';

/**
 * Calls kernel `name` of `kernels` on the host's arrays: each floats argument is copied into a
 * tensor of the backend, and each one the kernel writes is read back into its array.
 */
export async function run<K extends KernelName>(kernels: Kernels, name: K, args: KernelArgs<K, Float32Array>): Promise<void> {
  const named: Record<string, unknown> = { ...args };
  const copies: { host: Float32Array; tensor: Tensor; written: boolean }[] = [];
  for (const { name: arg, type } of parseArgs(KERNELS[name].args)) {
    if (type !== 'floats' && type !== 'floats out') continue;
    const host = named[arg] as Float32Array;
    const tensor = kernels.allocate(host.length);
    kernels.write(tensor, host);
    named[arg] = tensor;
    copies.push({ host, tensor, written: type === 'floats out' });
  }
  (kernels[name] as (args: unknown) => void)(named);
  for (const { host, tensor, written } of copies) if (written) host.set(await kernels.read(tensor));
  for (const { tensor } of copies) kernels.release(tensor);
}

/** The reference's result of kernel `name` on copies of the arrays written: { argument: array }. */
function reference<K extends KernelName>(name: K, args: KernelArgs<K, Float32Array>): Record<string, Float32Array> {
  const copies: Record<string, unknown> = { ...args };
  const written: Record<string, Float32Array> = {};
  for (const { name: arg, type } of parseArgs(KERNELS[name].args)) {
    if (type !== 'floats out') continue;
    written[arg] = Float32Array.from(copies[arg] as Float32Array);
    copies[arg] = written[arg];
  }
  (jsKernels[name] as (args: unknown) => void)(copies);
  return written;
}

// Independent float64 definitions, written from the formulas, not from the kernels.
function matmulDefinition(a: Float32Array, b: Float32Array, m: number, k: number, n: number, transA: boolean, transB: boolean): Float64Array {
  const c = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let sum = 0;
      for (let p = 0; p < k; p++) sum += (transA ? a[p * m + i] : a[i * k + p]) * (transB ? b[j * k + p] : b[p * n + j]);
      c[i * n + j] = sum;
    }
  }
  return c;
}

// Convolution by its definition, over a zero-padded input, in float64.
function convDefinition(inp: Float32Array, weight: Float32Array, B: number, H: number, W: number, C: number, O: number, K: number): Float64Array {
  const pad = (K - 1) / 2;
  const out = new Float64Array(B * H * W * O);
  const pixel = (b: number, y: number, x: number, c: number) => (y < 0 || y >= H || x < 0 || x >= W ? 0 : inp[((b * H + y) * W + x) * C + c]);
  for (let b = 0; b < B; b++)
    for (let y = 0; y < H; y++)
      for (let x = 0; x < W; x++)
        for (let o = 0; o < O; o++) {
          let sum = 0;
          for (let dy = 0; dy < K; dy++)
            for (let dx = 0; dx < K; dx++)
              for (let c = 0; c < C; c++) sum += pixel(b, y + dy - pad, x + dx - pad, c) * weight[((dy * K + dx) * C + c) * O + o];
          out[((b * H + y) * W + x) * O + o] = sum;
        }
  return out;
}

const SHAPES: [number, number, number][] = [
  [130, 257, 67],
  [9, 520, 600],
  [1, 1, 1],
  [3, 7, 5],
  [7, 1, 65],
  [65, 3, 7],
  [17, 33, 9],
  [64, 784, 10],
  // Thin and deep: the native backend splits it by k.
  [33, 701, 130],
  // Wider than the native product's column block (1,024).
  [3, 9, 1100],
];

const CONV_SHAPES = [
  { batch: 1, height: 1, width: 1, inChannels: 1, outChannels: 1, kernelSize: 3 },
  { batch: 3, height: 5, width: 7, inChannels: 3, outChannels: 5, kernelSize: 3 },
  { batch: 2, height: 6, width: 4, inChannels: 8, outChannels: 9, kernelSize: 1 },
  { batch: 5, height: 7, width: 7, inChannels: 4, outChannels: 12, kernelSize: 5 },
  { batch: 4, height: 28, width: 28, inChannels: 1, outChannels: 8, kernelSize: 3 },
  // One input channel, 3x3: the native backend's direct loop (filters in vectors of 16, then one by one).
  { batch: 3, height: 9, width: 6, inChannels: 1, outChannels: 21, kernelSize: 3 },
  // Shapes the fast backends compute by Winograd (at least 8 channels each way; wasm: multiples
  // of 4 too): odd heights and widths (partial tiles), a single pixel, more tiles than one chunk.
  { batch: 3, height: 7, width: 5, inChannels: 8, outChannels: 13, kernelSize: 3 },
  { batch: 3, height: 9, width: 11, inChannels: 12, outChannels: 8, kernelSize: 3 },
  { batch: 2, height: 1, width: 1, inChannels: 16, outChannels: 8, kernelSize: 3 },
  { batch: 2, height: 1, width: 1, inChannels: 17, outChannels: 8, kernelSize: 3 },
  { batch: 5, height: 14, width: 14, inChannels: 32, outChannels: 64, kernelSize: 3 },
  { batch: 3, height: 28, width: 27, inChannels: 9, outChannels: 33, kernelSize: 3 },
  // One image: the native backend splits it by rows (one channel) or by tiles and output channels.
  { batch: 1, height: 7, width: 7, inChannels: 24, outChannels: 40, kernelSize: 3 },
  { batch: 1, height: 28, width: 28, inChannels: 1, outChannels: 32, kernelSize: 3 },
];
// Sums of up to 9 x 64 products of values in [-1, 1]. Winograd's transforms add and subtract
// before multiplying, which rounds more than a direct sum: F(4x4, 3x3) scales by up to 8 and
// divides by up to 24 (errors measured: up to 9.2e-5 with 32 channels in; F(2x2, 3x3) 9e-6).
const CONV_TOLERANCE = 3e-4;

/** Defines the suite's tests for `kernels` (named by its description). */
export function kernelSuite(kernels: Kernels): void {
  describe(`${kernels.description} kernels`, () => {
    test('the three matrix products match their definition, with and without accumulation', async () => {
      const rng = Rng.fromSeed(1);
      for (const [m, k, n] of SHAPES) {
        for (const [transA, transB] of [[false, false], [true, false], [false, true]] as const) {
          const a = randomArray(rng, m * k);
          const b = randomArray(rng, k * n);
          // Some exact zeros, as ReLU outputs and background pixels have. The tolerance allows for
          // float32 rounding in sums of up to 784 terms.
          for (let i = 0; i < a.length; i += 3) a[i] = 0;
          const start = randomArray(rng, m * n);
          const product = transA ? 'matmulTransA' : transB ? 'matmulTransB' : 'matmul';
          const expected = matmulDefinition(a, b, m, k, n, transA, transB);
          const c = new Float32Array(m * n).fill(123);
          await run(kernels, product, { c, a, b, m, k, n, accumulate: false });
          assert.ok(maxRelativeError(c, expected) < 1e-4, `${m}x${k}x${n} transA=${transA} transB=${transB}`);
          c.set(start);
          await run(kernels, product, { c, a, b, m, k, n, accumulate: true });
          assert.ok(maxRelativeError(c, expected.map((value, i) => value + start[i])) < 1e-4, `accumulate ${m}x${k}x${n}`);
        }
      }
    });

    test('bias, row sums, ReLU, elementwise product, copy, mean and argmax match their definition', async () => {
      const rng = Rng.fromSeed(2);
      for (const [rows, cols] of [[1, 1], [3, 7], [65, 10]]) {
        const n = rows * cols;
        const x = randomArray(rng, n);
        const bias = randomArray(rng, cols);
        const out = Float32Array.from(x);
        await run(kernels, 'addBias', { out, bias, rows, cols });
        assert.deepEqual([...out], [...x].map((v, i) => Math.fround(v + bias[i % cols])));

        const dbias = Float32Array.from(bias);
        await run(kernels, 'sumRows', { dbias, dout: x, rows, cols });
        const sums = [...bias].map((v, c) => v + x.filter((_, i) => i % cols === c).reduce((s, e) => s + e, 0));
        assert.ok(maxRelativeError(dbias, sums) < 1e-6);

        const relu = new Float32Array(n);
        await run(kernels, 'relu', { out: relu, inp: x, n });
        assert.deepEqual([...relu], [...x].map((v) => Math.max(v, 0)));
        const dout = randomArray(rng, n);
        const dinp = new Float32Array(n);
        await run(kernels, 'reluBackward', { dinp, dout, out: relu, n });
        assert.deepEqual([...dinp], [...dout].map((g, i) => (x[i] > 0 ? g : 0)));

        const product = new Float32Array(n);
        await run(kernels, 'multiply', { out: product, a: x, b: dout, n });
        assert.deepEqual([...product], [...x].map((v, i) => Math.fround(v * dout[i])));

        const zeroed = Float32Array.from(x);
        await run(kernels, 'zero', { out: zeroed, n: n - 1 });
        assert.deepEqual([...zeroed], [...x].map((v, i) => (i < n - 1 ? 0 : v)));

        const copied = new Float32Array(n + 1).fill(5);
        await run(kernels, 'copy', { out: copied, inp: x, n });
        assert.deepEqual([...copied], [...x, 5]);

        const mean = new Float32Array(n);
        await run(kernels, 'average', { out: mean, a: x, b: dout, n });
        assert.deepEqual([...mean], [...x].map((v, i) => Math.fround((v + dout[i]) / 2)));

        // Ties: the first maximum wins.
        const tied = Float32Array.from(x);
        if (cols > 3) tied[2] = tied[3] = 2;
        const classes = new Float32Array(rows).fill(-1);
        await run(kernels, 'argmaxRows', { out: classes, inp: tied, rows, cols });
        const firstMaximum = (r: number) => {
          const row = [...tied.subarray(r * cols, (r + 1) * cols)];
          return row.indexOf(Math.max(...row));
        };
        assert.deepEqual([...classes], Array.from({ length: rows }, (_, r) => firstMaximum(r)));
      }
    });

    test('mirroring images reverses each row of pixels, channels kept together', async () => {
      const rng = Rng.fromSeed(18);
      for (const [batch, height, width, channels] of [[1, 1, 1, 1], [2, 3, 5, 3], [3, 28, 28, 1]]) {
        const inp = randomArray(rng, batch * height * width * channels);
        const out = new Float32Array(inp.length);
        await run(kernels, 'mirrorImages', { out, inp, batch, height, width, channels });
        const at = (b: number, y: number, x: number, c: number) => ((b * height + y) * width + x) * channels + c;
        for (let b = 0; b < batch; b++)
          for (let y = 0; y < height; y++)
            for (let x = 0; x < width; x++)
              for (let c = 0; c < channels; c++) assert.equal(out[at(b, y, x, c)], inp[at(b, y, width - 1 - x, c)]);
      }
    });

    test("dropout masks are the reference's, draw for draw", async () => {
      const rng = Rng.fromSeed(14);
      for (const n of [1, 5, 8, 13, 8192, 8203]) {
        for (const threshold of [1, 52429, 65536]) {
          const [key0, key1] = [rng.bits(), rng.bits()];
          const args = { mask: new Float32Array(n + 1).fill(7), n, threshold, scale: 65536 / threshold, key0, key1 };
          const expected = reference('dropoutMask', args).mask;
          await run(kernels, 'dropoutMask', args);
          assert.deepEqual(args.mask, expected, `n ${n}, threshold ${threshold}`);
        }
      }
    });

    test('gathering pixels scales the chosen rows of any byte array, in order', async () => {
      const rng = Rng.fromSeed(13);
      for (const [rows, rowLength, count] of [[5, 3, 2], [300, 785, 64]]) {
        // Row 0 of the large case holds every byte value once.
        const pixels = Uint8Array.from({ length: rows * rowLength }, (_, i) => (i < 256 ? i : rng.int(256)));
        const indices = Int32Array.from({ length: count + 7 }, (_, i) => (i === 7 ? 0 : rng.int(rows)));
        const out = new Float32Array(count * rowLength);
        await run(kernels, 'gatherPixels', { out, pixels, indices, start: 7, count, rowLength });
        for (let b = 0; b < count; b++) {
          const row = indices[7 + b] * rowLength;
          const expected = Float32Array.from(pixels.subarray(row, row + rowLength), (p) => p / 255);
          assert.deepEqual(out.subarray(b * rowLength, (b + 1) * rowLength), expected, `row ${b}`);
        }
      }
    });

    test('batch normalisation kernels match the reference on odd shapes, large ones split between threads', async () => {
      const rng = Rng.fromSeed(16);
      // [rows, channels]: a single element, odd sizes, more channels than the wasm kernels sum at a time, and enough rows to split.
      for (const [rows, channels] of [[1, 1], [7, 3], [33, 5], [5, 2051], [4099, 36]]) {
        const n = rows * channels;
        const inp = randomArray(rng, n);
        for (let i = 0; i < n; i++) inp[i] = 3 + 2 * inp[i];
        const [gamma, beta, invStd, scale, shift, givenMean, sums, sumsNormalized] = Array.from({ length: 8 }, () => randomArray(rng, channels));
        const variances = Float32Array.from(randomArray(rng, channels), (v) => 1 + v);
        const [dout, x] = [randomArray(rng, n), randomArray(rng, n)];
        // Each kernel gets the same inputs on every backend (not another kernel's float32 rounding).
        const calls = {
          statistics: ['batchNormStatistics', { mean: new Float32Array(channels), variance: new Float32Array(channels), inp, rows, channels }],
          forward: ['batchNormForward', { out: new Float32Array(n), normalized: new Float32Array(n), inp, mean: givenMean, invStd, gamma, beta, rows, channels }],
          sums: ['batchNormBackwardSums', { sumDout: new Float32Array(channels), sumDoutNormalized: new Float32Array(channels), dout, normalized: x, rows, channels }],
          backward: ['batchNormBackward', { dinp: new Float32Array(n), dout, normalized: x, doutScale: scale, offset: sums, normalizedScale: sumsNormalized, rows, channels }],
          affine: ['channelAffine', { out: new Float32Array(n), inp, scale, shift, rows, channels }],
          update: [
            'batchNormUpdate',
            { invStd: new Float32Array(channels), runningMean: Float32Array.from(shift), runningVar: Float32Array.from(variances), mean: givenMean, variance: variances, rows, channels, momentum: 0.1, epsilon: 1e-5 },
          ],
          scaleShift: ['batchNormScaleShift', { scale: new Float32Array(channels), shift: new Float32Array(channels), gamma, beta, runningMean: givenMean, runningVar: variances, channels, epsilon: 1e-5 }],
          factors: [
            'batchNormBackwardFactors',
            { doutScale: new Float32Array(channels), offset: new Float32Array(channels), normalizedScale: new Float32Array(channels), sumDout: sums, sumDoutNormalized: sumsNormalized, gamma, invStd, rows, channels },
          ],
        } as const;
        for (const [what, [name, args]] of Object.entries(calls)) {
          const expected = reference(name, args as never);
          await run(kernels, name, args as never);
          for (const [arg, values] of Object.entries(expected)) {
            assert.ok(maxRelativeError((args as unknown as Record<string, Float32Array>)[arg], values) < 1e-5, `${what}: ${arg} of [${rows}, ${channels}]`);
          }
        }
        // The statistics against float64 definitions.
        const { mean: gotMean, variance: gotVariance } = calls.statistics[1];
        for (let c = 0; c < channels; c++) {
          let sum = 0;
          for (let r = 0; r < rows; r++) sum += inp[r * channels + c];
          const mean = sum / rows;
          let squares = 0;
          for (let r = 0; r < rows; r++) squares += (inp[r * channels + c] - mean) ** 2;
          assert.ok(Math.abs(gotMean[c] - mean) <= 1e-6 * Math.abs(mean) + 1e-7, `mean ${c} of [${rows}, ${channels}]`);
          assert.ok(Math.abs(gotVariance[c] - squares / rows) <= 1e-6 * (squares / rows) + 1e-7, `variance ${c} of [${rows}, ${channels}]`);
        }
      }
    });

    test('batch normalisation fused with the ReLU after it gives the bits of the two run apart', async () => {
      const rng = Rng.fromSeed(17);
      for (const [rows, channels] of [[1, 1], [7, 3], [33, 5], [5, 2051], [4099, 36]]) {
        const n = rows * channels;
        const inp = randomArray(rng, n);
        const [gamma, beta, invStd, mean] = Array.from({ length: 4 }, () => randomArray(rng, channels));
        // An exact zero and a NaN among the values the ReLU sees.
        beta[0] = 0;
        inp[0] = mean[0];
        if (n > 2) inp[1] = Number.NaN;
        const [normalized, bn, reluOut, normalizedFused, fusedOut] = Array.from({ length: 5 }, () => new Float32Array(n));
        const args = { inp, mean, invStd, gamma, beta, rows, channels };
        await run(kernels, 'batchNormForward', { ...args, out: bn, normalized });
        await run(kernels, 'relu', { out: reluOut, inp: bn, n });
        await run(kernels, 'batchNormReluForward', { ...args, out: fusedOut, normalized: normalizedFused });
        assert.deepEqual(fusedOut, reluOut, `output of [${rows}, ${channels}]`);
        assert.deepEqual(normalizedFused, normalized, `normalized of [${rows}, ${channels}]`);
        if (n > 10) assert.ok(reluOut.some((v) => v === 0) && reluOut.some((v) => v > 0), 'the ReLU passes some values and stops others');
      }
    });

    test('large arrays, which the threaded backends split between threads, give the reference results', async () => {
      const rng = Rng.fromSeed(12);
      const [rows, cols] = [4099, 67];
      const n = rows * cols;
      const x = randomArray(rng, n);
      const dout = randomArray(rng, n);
      const bias = randomArray(rng, cols);
      // 6 images of 28x28x32: pooling is split by image.
      const [B, H, W, C] = [6, 28, 28, 32];
      const images = x.subarray(0, B * H * W * C);
      const pooled = new Float32Array(B * 14 * 14 * C);
      await run(kernels, 'maxPool2x2', { out: pooled, inp: images, batch: B, height: H, width: W, channels: C });
      const calls = {
        biased: ['addBias', { out: Float32Array.from(x), bias, rows, cols }],
        relu: ['relu', { out: new Float32Array(n), inp: x, n }],
        dinp: ['reluBackward', { dinp: new Float32Array(n), dout, out: x, n }],
        product: ['multiply', { out: new Float32Array(n), a: x, b: dout, n }],
        zeroed: ['zero', { out: Float32Array.from(x), n: n - 5 }],
        average: ['emaUpdate', { average: Float32Array.from(dout), values: x, n, decay: 0.99 }],
        adam: ['adamStep', { param: Float32Array.from(x), grad: dout, m: new Float32Array(n), v: new Float32Array(n), n, learningRate: 0.01, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0.001, step: 1 }],
        pooled: ['maxPool2x2', { out: new Float32Array(pooled.length), inp: images, batch: B, height: H, width: W, channels: C }],
        dimages: ['maxPool2x2Backward', { dinp: new Float32Array(B * H * W * C), dout: dout.subarray(0, pooled.length), inp: images, out: pooled, batch: B, height: H, width: W, channels: C }],
      } as const;
      for (const [what, [name, args]] of Object.entries(calls)) {
        const expected = reference(name, args as never);
        await run(kernels, name, args as never);
        for (const [arg, values] of Object.entries(expected)) {
          assert.ok(maxRelativeError((args as unknown as Record<string, Float32Array>)[arg], values) < 1e-5, `${what}: ${arg}`);
        }
      }
      // Column sums of 4,099 rows, against float64 sums: float32 sums in any order stay within 1e-4.
      const sums = Float32Array.from(bias);
      await run(kernels, 'sumRows', { dbias: sums, dout: x, rows, cols });
      const exact = [...bias].map((b, c) => {
        let sum = b;
        for (let r = 0; r < rows; r++) sum += x[r * cols + c];
        return sum;
      });
      assert.ok(maxRelativeError(sums, exact) < 1e-4, 'sums');
      if (kernels.name === 'native') {
        // Each column summed over the rows in order, on one thread: the reference's bits.
        assert.deepEqual(sums, reference('sumRows', { dbias: Float32Array.from(bias), dout: x, rows, cols }).dbias, 'native column sums');
      }
    });

    test('softmax cross-entropy and its gradient, plain and with label smoothing, match their definition, and survive huge logits', async () => {
      const rng = Rng.fromSeed(3);
      for (const smoothing of [0, 0.1]) {
        for (const [rows, cols] of [[1, 1], [3, 10], [65, 7]]) {
          const logits = randomArray(rng, rows * cols, 5);
          const labels = Int32Array.from({ length: rows }, () => rng.int(cols));
          const probs = new Float32Array(rows * cols);
          const losses = new Float32Array(rows);
          await run(kernels, 'softmaxCrossEntropy', { probs, losses, logits, labels, rows, cols, smoothing });
          // The smoothed target q = (1 - ε)·onehot + ε / cols; each row's loss is -Σ q log p.
          const target = (r: number, c: number) => (1 - smoothing) * (c === labels[r] ? 1 : 0) + smoothing / cols;
          const expectedLosses: number[] = [];
          const expectedProbs: number[] = [];
          for (let r = 0; r < rows; r++) {
            const row = [...logits.subarray(r * cols, (r + 1) * cols)].map(Math.exp);
            const sum = row.reduce((a, b) => a + b, 0);
            expectedProbs.push(...row.map((e) => e / sum));
            expectedLosses.push(-row.reduce((loss, e, c) => loss + target(r, c) * Math.log(e / sum), 0));
          }
          assert.ok(maxRelativeError(losses, expectedLosses) < 1e-5, `losses, smoothing ${smoothing}`);
          assert.ok(maxRelativeError(probs, expectedProbs) < 1e-6);
          const dlogits = new Float32Array(rows * cols);
          await run(kernels, 'softmaxCrossEntropyBackward', { dlogits, probs, labels, rows, cols, smoothing });
          const expectedGrad = expectedProbs.map((p, i) => (p - target(Math.floor(i / cols), i % cols)) / rows);
          assert.ok(maxRelativeError(dlogits, expectedGrad) < 1e-5, `gradient, smoothing ${smoothing}`);
        }
      }
      const huge = Float32Array.from([1000, -1000, 0, 3e38]);
      const probs = new Float32Array(4);
      const losses = new Float32Array(1);
      await run(kernels, 'softmaxCrossEntropy', { probs, losses, logits: huge, labels: Int32Array.from([1]), rows: 1, cols: 4, smoothing: 0 });
      assert.ok(Number.isFinite(losses[0]) && losses[0] > 1e38, `loss ${losses[0]}`);
      assert.deepEqual([...probs], [0, 0, 0, 1]);
    });

    test('SGD (plain, momentum, Nesterov, weight decay) matches its definition over several steps', async () => {
      const rng = Rng.fromSeed(4);
      for (const hyper of [
        { learningRate: 0.1, momentum: 0, nesterov: false, weightDecay: 0 },
        { learningRate: 0.05, momentum: 0.9, nesterov: false, weightDecay: 0.01 },
        { learningRate: 0.05, momentum: 0.9, nesterov: true, weightDecay: 0 },
      ]) {
        const n = 7;
        const param = randomArray(rng, n);
        const velocity = new Float32Array(n);
        const p = Float64Array.from(param);
        const v = new Float64Array(n);
        for (let step = 0; step < 3; step++) {
          const grad = randomArray(rng, n);
          await run(kernels, 'sgdStep', { param, grad, velocity, n, ...hyper });
          for (let i = 0; i < n; i++) {
            const g = grad[i] + hyper.weightDecay * p[i];
            v[i] = hyper.momentum * v[i] + g;
            const update = hyper.momentum === 0 ? g : hyper.nesterov ? g + hyper.momentum * v[i] : v[i];
            p[i] -= hyper.learningRate * update;
          }
        }
        assert.ok(maxRelativeError(param, p) < 1e-5, JSON.stringify(hyper));
      }
    });

    test('Adam matches its definition over several steps', async () => {
      const rng = Rng.fromSeed(5);
      const n = 9;
      const param = randomArray(rng, n);
      const m = new Float32Array(n);
      const v = new Float32Array(n);
      const p = Float64Array.from(param);
      const m64 = new Float64Array(n);
      const v64 = new Float64Array(n);
      const [lr, b1, b2, eps, wd] = [0.01, 0.9, 0.999, 1e-8, 0.001];
      for (let step = 1; step <= 4; step++) {
        const grad = randomArray(rng, n);
        await run(kernels, 'adamStep', { param, grad, m, v, n, learningRate: lr, beta1: b1, beta2: b2, epsilon: eps, weightDecay: wd, step });
        for (let i = 0; i < n; i++) {
          const g = grad[i] + wd * p[i];
          m64[i] = b1 * m64[i] + (1 - b1) * g;
          v64[i] = b2 * v64[i] + (1 - b2) * g * g;
          p[i] -= (lr * (m64[i] / (1 - b1 ** step))) / (Math.sqrt(v64[i] / (1 - b2 ** step)) + eps);
        }
      }
      assert.ok(maxRelativeError(param, p) < 1e-5);
    });

    test('conv2d matches its definition', async () => {
      const rng = Rng.fromSeed(6);
      for (const shape of CONV_SHAPES) {
        const { batch: B, height: H, width: W, inChannels: C, outChannels: O, kernelSize: K } = shape;
        const inp = randomArray(rng, B * H * W * C);
        const weight = randomArray(rng, K * K * C * O);
        const out = new Float32Array(B * H * W * O).fill(7);
        await run(kernels, 'conv2d', { out, inp, weight, ...shape });
        assert.ok(maxRelativeError(out, convDefinition(inp, weight, B, H, W, C, O, K)) < CONV_TOLERANCE, JSON.stringify(shape));
      }
    });

    test('conv2dPrepare writes the weight and its Winograd filter transform; conv2dPrepared convolves by its definition', async () => {
      const rng = Rng.fromSeed(16);
      // G of F(4x4, 3x3), from the spec's definition, in float64.
      const G = [[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6], [1 / 24, 1 / 12, 1 / 6], [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]];
      let clamped = false;
      let kept = false;
      for (const shape of CONV_SHAPES) {
        const { batch: B, height: H, width: W, inChannels: C, outChannels: O, kernelSize: K } = shape;
        const plane = C * O;
        const weight = randomArray(rng, K * K * plane);
        const prepared = new Float32Array(preparedConv2dFloats(C, O, K)).fill(5);
        await run(kernels, 'conv2dPrepare', { prepared, weight, inChannels: C, outChannels: O, kernelSize: K });
        assert.deepEqual(prepared.subarray(0, K * K * plane), weight, `the weight comes first ${JSON.stringify(shape)}`);
        if (hasWinogradFilters(C, O, K)) {
          const expected = new Float64Array(36 * plane);
          for (let f = 0; f < plane; f++)
            for (let i = 0; i < 6; i++)
              for (let j = 0; j < 6; j++) {
                let sum = 0;
                for (let a = 0; a < 3; a++) for (let b = 0; b < 3; b++) sum += G[i][a] * weight[(3 * a + b) * plane + f] * G[j][b];
                expected[(6 * i + j) * plane + f] = sum;
              }
          assert.ok(maxRelativeError(prepared.subarray(9 * plane), expected) < 1e-6, `U ${JSON.stringify(shape)}`);
        }
        const inp = randomArray(rng, B * H * W * C);
        const bias = randomArray(rng, O);
        const definition = convDefinition(inp, weight, B, H, W, C, O, K);
        for (let i = 0; i < definition.length; i++) definition[i] += bias[i % O];
        const out = new Float32Array(B * H * W * O).fill(7);
        await run(kernels, 'conv2dPrepared', { out, inp, prepared, bias, ...shape, relu: 0 });
        assert.ok(maxRelativeError(out, definition) < CONV_TOLERANCE, `conv2dPrepared ${JSON.stringify(shape)}`);
        // With the ReLU: this backend's relu of the output without, to the bit.
        const separate = new Float32Array(B * H * W * O);
        await run(kernels, 'relu', { out: separate, inp: out, n: separate.length });
        const fused = new Float32Array(B * H * W * O).fill(7);
        await run(kernels, 'conv2dPrepared', { out: fused, inp, prepared, bias, ...shape, relu: 1 });
        assert.deepEqual(fused, separate, `conv2dPrepared with its ReLU ${JSON.stringify(shape)}`);
        clamped ||= separate.some((value) => value === 0);
        kept ||= separate.some((value) => value > 0);
      }
      assert.ok(clamped && kept, 'the ReLU clamps some outputs and keeps others');
    });

    test('conv2d of images together gives each image the bits it gets alone', async () => {
      const rng = Rng.fromSeed(17);
      for (const shape of [CONV_SHAPES[10], CONV_SHAPES[11], CONV_SHAPES[5]]) {
        const { height: H, width: W, inChannels: C, outChannels: O, kernelSize: K } = shape;
        const B = 3;
        const inp = randomArray(rng, B * H * W * C);
        const weight = randomArray(rng, K * K * C * O);
        const together = new Float32Array(B * H * W * O);
        await run(kernels, 'conv2d', { out: together, inp, weight, ...shape, batch: B });
        for (let b = 0; b < B; b++) {
          const alone = new Float32Array(H * W * O);
          await run(kernels, 'conv2d', { out: alone, inp: inp.slice(b * H * W * C, (b + 1) * H * W * C), weight, ...shape, batch: 1 });
          assert.deepEqual(alone, together.subarray(b * H * W * O, (b + 1) * H * W * O), `image ${b} of ${JSON.stringify(shape)}`);
        }
      }
    });

    test('conv2d gradients match the reference backend', async () => {
      const rng = Rng.fromSeed(7);
      for (const shape of CONV_SHAPES) {
        const { batch: B, height: H, width: W, inChannels: C, outChannels: O, kernelSize: K } = shape;
        const inp = randomArray(rng, B * H * W * C);
        const weight = randomArray(rng, K * K * C * O);
        const dout = randomArray(rng, B * H * W * O);
        const input = { dinp: new Float32Array(B * H * W * C).fill(3), dout, weight, ...shape };
        const expectedDinp = reference('conv2dBackwardInput', input).dinp;
        await run(kernels, 'conv2dBackwardInput', input);
        assert.ok(maxRelativeError(input.dinp, expectedDinp) < CONV_TOLERANCE, `input gradient ${JSON.stringify(shape)}`);
        const weights = { dweight: randomArray(rng, K * K * C * O), inp, dout, ...shape };
        const expectedDweight = reference('conv2dBackwardWeight', weights).dweight;
        await run(kernels, 'conv2dBackwardWeight', weights);
        // Sums over every pixel of the batch: up to 2,268 here (errors measured: up to 1.5e-4 by F(4x4, 3x3)).
        assert.ok(maxRelativeError(weights.dweight, expectedDweight) < 5e-4, `weight gradient (accumulated) ${JSON.stringify(shape)}`);
      }
    });

    test('2x2 max pooling and its gradient match their definition, odd sizes included', async () => {
      const rng = Rng.fromSeed(8);
      for (const [B, H, W, C] of [[1, 2, 2, 1], [2, 5, 7, 3], [3, 7, 7, 8], [2, 28, 28, 5]]) {
        const inp = randomArray(rng, B * H * W * C);
        // Like ReLU outputs, most negatives become zeros: windows with ties, where the first
        // element equal to the maximum takes the gradient.
        for (let i = 0; i < inp.length; i++) if (inp[i] < 0 && i % 5 !== 0) inp[i] = 0;
        const oh = Math.floor(H / 2);
        const ow = Math.floor(W / 2);
        const out = new Float32Array(B * oh * ow * C);
        await run(kernels, 'maxPool2x2', { out, inp, batch: B, height: H, width: W, channels: C });
        const dout = randomArray(rng, B * oh * ow * C);
        const dinp = new Float32Array(B * H * W * C).fill(9);
        await run(kernels, 'maxPool2x2Backward', { dinp, dout, inp, out, batch: B, height: H, width: W, channels: C });
        const expectedDinp = new Float64Array(B * H * W * C);
        for (let b = 0; b < B; b++)
          for (let y = 0; y < oh; y++)
            for (let x = 0; x < ow; x++)
              for (let c = 0; c < C; c++) {
                const window = [[2 * y, 2 * x], [2 * y, 2 * x + 1], [2 * y + 1, 2 * x], [2 * y + 1, 2 * x + 1]].map(([yy, xx]) => ((b * H + yy) * W + xx) * C + c);
                const values = window.map((i) => inp[i]);
                const best = values.indexOf(Math.max(...values));
                const o = ((b * oh + y) * ow + x) * C + c;
                assert.equal(out[o], values[best]);
                expectedDinp[window[best]] = dout[o];
              }
        assert.deepEqual([...dinp], [...expectedDinp]);
      }
    });

    test('tensors: subarrays share their memory, writes and reads land where asked, in order with the kernels', async () => {
      const tensor = kernels.allocate(10);
      assert.deepEqual([...(await kernels.read(tensor))], Array(10).fill(0), 'allocate gives zeros');
      kernels.write(tensor, Float32Array.from([1, 2, 3]), 4);
      const view = tensor.subarray(3, 8);
      assert.equal(view.length, 5);
      assert.deepEqual([...(await kernels.read(view))], [0, 1, 2, 3, 0]);
      // Two ranges of one tensor, one read and one written by the same kernel.
      kernels.relu({ out: view.subarray(3, 5), inp: view.subarray(1, 3), n: 2 });
      kernels.write(tensor, Float32Array.from([-4]), 9);
      assert.deepEqual([...(await kernels.read(tensor))], [0, 0, 0, 0, 1, 2, 1, 2, 0, -4]);
      kernels.release(tensor);
    });
  });
}
