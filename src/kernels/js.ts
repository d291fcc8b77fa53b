import type { HostKernels, KernelArgs, Kernels } from './types.ts';
import { hasWinogradFilters } from './spec.ts';

/** Chris Wellons's "lowbias32" integer hash: a bijection of 32-bit words with little bias. */
function lowbias32(x: number): number {
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d);
  x ^= x >>> 15;
  x = Math.imul(x, 0x846ca68b);
  return (x ^ (x >>> 16)) >>> 0;
}

/**
 * Word j of dropout's counter-based generator under the key (key0, key1): two rounds of the
 * hash, the key mixed in before each. Different keys give unrelated streams.
 */
export function dropoutWord(j: number, key0: number, key1: number): number {
  return lowbias32((lowbias32((j ^ key0) >>> 0) + key1) >>> 0);
}

/**
 * The reference backend: plain TypeScript over Float32Arrays, written to be obviously right.
 * Faster backends are tested against it. The matrix products use the i-p-j loop order so the
 * inner loop streams along rows, and skip zero multipliers (ReLU outputs and background
 * pixels are often exactly zero), which changes no result.
 */
/**
 * batchNormForward, and with relu batchNormReluForward: the output rounded to float32 (as it is
 * stored) before the ReLU compares it.
 */
function normalizeRows({ out, normalized, inp, mean, invStd, gamma, beta, rows, channels }: KernelArgs<'batchNormForward', Float32Array>, relu: boolean): void {
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < channels; c++) {
      const i = r * channels + c;
      const x = (inp[i] - mean[c]) * invStd[c];
      normalized[i] = x;
      const y = Math.fround(gamma[c] * x + beta[c]);
      out[i] = relu && !(y > 0) ? 0 : y;
    }
  }
}

export const referenceKernels: HostKernels = {
  name: 'js',
  description: 'js (plain TypeScript, 1 thread)',
  device: 'cpu',

  allocate(length) {
    return new Float32Array(length);
  },

  release() {},

  write(target, source, offset = 0) {
    target.set(source, offset);
  },

  async read(source) {
    return source.slice();
  },

  // c[m,n] (+)= a[m,k] · b[k,n]
  matmul({ c, a, b, m, k, n, accumulate }) {
    if (!accumulate) c.fill(0, 0, m * n);
    for (let i = 0; i < m; i++) {
      const cRow = i * n;
      for (let p = 0; p < k; p++) {
        const aip = a[i * k + p];
        if (aip === 0) continue;
        const bRow = p * n;
        for (let j = 0; j < n; j++) c[cRow + j] += aip * b[bRow + j];
      }
    }
  },

  // c[m,n] (+)= a[k,m]ᵀ · b[k,n]
  matmulTransA({ c, a, b, m, k, n, accumulate }) {
    if (!accumulate) c.fill(0, 0, m * n);
    for (let p = 0; p < k; p++) {
      const bRow = p * n;
      for (let i = 0; i < m; i++) {
        const api = a[p * m + i];
        if (api === 0) continue;
        const cRow = i * n;
        for (let j = 0; j < n; j++) c[cRow + j] += api * b[bRow + j];
      }
    }
  },

  // c[m,n] (+)= a[m,k] · b[n,k]ᵀ
  matmulTransB({ c, a, b, m, k, n, accumulate }) {
    for (let i = 0; i < m; i++) {
      const aRow = i * k;
      for (let j = 0; j < n; j++) {
        const bRow = j * k;
        let sum = 0;
        for (let p = 0; p < k; p++) sum += a[aRow + p] * b[bRow + p];
        c[i * n + j] = accumulate ? c[i * n + j] + sum : sum;
      }
    }
  },

  addBias({ out, bias, rows, cols }) {
    for (let r = 0; r < rows; r++) {
      const row = r * cols;
      for (let c = 0; c < cols; c++) out[row + c] += bias[c];
    }
  },

  sumRows({ dbias, dout, rows, cols }) {
    for (let r = 0; r < rows; r++) {
      const row = r * cols;
      for (let c = 0; c < cols; c++) dbias[c] += dout[row + c];
    }
  },

  relu({ out, inp, n }) {
    for (let i = 0; i < n; i++) out[i] = inp[i] > 0 ? inp[i] : 0;
  },

  reluBackward({ dinp, dout, out, n }) {
    for (let i = 0; i < n; i++) dinp[i] = out[i] > 0 ? dout[i] : 0;
  },

  // A double division rounded to float gives the float division's result for all 256 bytes.
  gatherPixels({ out, pixels, indices, start, count, rowLength }) {
    for (let b = 0; b < count; b++) {
      const row = indices[start + b] * rowLength;
      const target = b * rowLength;
      for (let j = 0; j < rowLength; j++) out[target + j] = pixels[row + j] / 255;
    }
  },

  dropoutMask({ mask, n, threshold, scale, key0, key1 }) {
    for (let block = 0; 8 * block < n; block++) {
      for (let r = 0; r < 4 && 8 * block + r < n; r++) {
        const word = dropoutWord(4 * block + r, key0, key1);
        const i = 8 * block + r;
        mask[i] = (word & 0xffff) < threshold ? scale : 0;
        if (i + 4 < n) mask[i + 4] = word >>> 16 < threshold ? scale : 0;
      }
    }
  },

  zero({ out, n }) {
    out.fill(0, 0, n);
  },

  multiply({ out, a, b, n }) {
    for (let i = 0; i < n; i++) out[i] = a[i] * b[i];
  },

  copy({ out, inp, n }) {
    out.set(inp.subarray(0, n));
  },

  // (a + b) / 2 in float64, rounded once: the float nearest to the mean.
  average({ out, a, b, n }) {
    for (let i = 0; i < n; i++) out[i] = 0.5 * (a[i] + b[i]);
  },

  argmaxRows({ out, inp, rows, cols }) {
    for (let r = 0; r < rows; r++) {
      let best = 0;
      for (let c = 1; c < cols; c++) if (inp[r * cols + c] > inp[r * cols + best]) best = c;
      out[r] = best;
    }
  },

  mirrorImages({ out, inp, batch, height, width, channels }) {
    for (let row = 0; row < batch * height; row++) {
      const base = row * width * channels;
      for (let x = 0; x < width; x++) {
        const target = base + x * channels;
        const source = base + (width - 1 - x) * channels;
        for (let c = 0; c < channels; c++) out[target + c] = inp[source + c];
      }
    }
  },

  softmaxCrossEntropy({ probs, losses, logits, labels, rows, cols, smoothing }) {
    for (let r = 0; r < rows; r++) {
      const row = r * cols;
      let max = -Infinity;
      for (let c = 0; c < cols; c++) max = Math.max(max, logits[row + c]);
      let sum = 0;
      for (let c = 0; c < cols; c++) {
        const e = Math.exp(logits[row + c] - max);
        probs[row + c] = e;
        sum += e;
      }
      for (let c = 0; c < cols; c++) probs[row + c] /= sum;
      // log p_c = (logit_c - max) - log(sum), exact even where p_c underflows.
      const logSum = Math.log(sum);
      if (smoothing > 0) {
        let logAll = 0;
        for (let c = 0; c < cols; c++) logAll += logits[row + c] - max - logSum;
        losses[r] = -((1 - smoothing) * (logits[row + labels[r]] - max - logSum) + (smoothing / cols) * logAll);
      } else {
        losses[r] = -(logits[row + labels[r]] - max - logSum);
      }
    }
  },

  softmaxCrossEntropyBackward({ dlogits, probs, labels, rows, cols, smoothing }) {
    const scale = 1 / rows;
    const spread = (smoothing / cols) * scale;
    for (let r = 0; r < rows; r++) {
      const row = r * cols;
      for (let c = 0; c < cols; c++) dlogits[row + c] = smoothing > 0 ? probs[row + c] * scale - spread : probs[row + c] * scale;
      dlogits[row + labels[r]] -= smoothing > 0 ? (1 - smoothing) * scale : scale;
    }
  },

  emaUpdate({ average, values, n, decay }) {
    for (let i = 0; i < n; i++) average[i] = decay * average[i] + (1 - decay) * values[i];
  },

  // Convolutions as direct loops over the definition; `valid` skips taps in the zero padding.
  conv2d({ out, inp, weight, batch, height, width, inChannels: C, outChannels: O, kernelSize: K }) {
    const pad = (K - 1) / 2;
    out.fill(0, 0, batch * height * width * O);
    for (let b = 0; b < batch; b++) {
      for (let y = 0; y < height; y++) {
        for (let x = 0; x < width; x++) {
          const outBase = ((b * height + y) * width + x) * O;
          for (let dy = 0; dy < K; dy++) {
            const sy = y + dy - pad;
            if (sy < 0 || sy >= height) continue;
            for (let dx = 0; dx < K; dx++) {
              const sx = x + dx - pad;
              if (sx < 0 || sx >= width) continue;
              const inBase = ((b * height + sy) * width + sx) * C;
              for (let c = 0; c < C; c++) {
                const v = inp[inBase + c];
                const wBase = ((dy * K + dx) * C + c) * O;
                for (let o = 0; o < O; o++) out[outBase + o] += v * weight[wBase + o];
              }
            }
          }
        }
      }
    }
  },

  conv2dPrepare({ prepared, weight, inChannels: C, outChannels: O, kernelSize: K }) {
    const plane = C * O;
    prepared.set(weight.subarray(0, K * K * plane));
    if (!hasWinogradFilters(C, O, K)) return;
    // U = G g Gᵀ for each filter g (3x3), through t = G g (6x3), each step rounded to float32.
    const f = Math.fround;
    const g6 = (x0: number, x1: number, x2: number) => [
      f(0.25 * x0),
      f(-f(1 / 6) * f(f(x0 + x1) + x2)),
      f(-f(1 / 6) * f(f(x0 - x1) + x2)),
      f(f(f(f(1 / 24) * x0) + f(f(1 / 12) * x1)) + f(f(1 / 6) * x2)),
      f(f(f(f(1 / 24) * x0) - f(f(1 / 12) * x1)) + f(f(1 / 6) * x2)),
      x2,
    ];
    const u = prepared.subarray(9 * plane);
    for (let i = 0; i < plane; i++) {
      const tap = (t: number) => weight[t * plane + i];
      const columns = [0, 1, 2].map((x) => g6(tap(x), tap(3 + x), tap(6 + x)));
      for (let r = 0; r < 6; r++) {
        const row = g6(columns[0][r], columns[1][r], columns[2][r]);
        for (let c = 0; c < 6; c++) u[(6 * r + c) * plane + i] = row[c];
      }
    }
  },

  conv2dPrepared({ out, inp, prepared, bias, relu, ...shape }) {
    const { batch, height, width, inChannels: C, outChannels: O, kernelSize: K } = shape;
    referenceKernels.conv2d({ out, inp, weight: prepared.subarray(0, K * K * C * O), ...shape });
    referenceKernels.addBias({ out, bias, rows: batch * height * width, cols: O });
    if (relu) referenceKernels.relu({ out, inp: out, n: batch * height * width * O });
  },

  conv2dBackwardInput({ dinp, dout, weight, batch, height, width, inChannels: C, outChannels: O, kernelSize: K }) {
    const pad = (K - 1) / 2;
    dinp.fill(0, 0, batch * height * width * C);
    for (let b = 0; b < batch; b++) {
      for (let y = 0; y < height; y++) {
        for (let x = 0; x < width; x++) {
          const outBase = ((b * height + y) * width + x) * O;
          for (let dy = 0; dy < K; dy++) {
            const sy = y + dy - pad;
            if (sy < 0 || sy >= height) continue;
            for (let dx = 0; dx < K; dx++) {
              const sx = x + dx - pad;
              if (sx < 0 || sx >= width) continue;
              const inBase = ((b * height + sy) * width + sx) * C;
              for (let c = 0; c < C; c++) {
                const wBase = ((dy * K + dx) * C + c) * O;
                let sum = 0;
                for (let o = 0; o < O; o++) sum += dout[outBase + o] * weight[wBase + o];
                dinp[inBase + c] += sum;
              }
            }
          }
        }
      }
    }
  },

  conv2dBackwardWeight({ dweight, inp, dout, batch, height, width, inChannels: C, outChannels: O, kernelSize: K }) {
    const pad = (K - 1) / 2;
    for (let b = 0; b < batch; b++) {
      for (let y = 0; y < height; y++) {
        for (let x = 0; x < width; x++) {
          const outBase = ((b * height + y) * width + x) * O;
          for (let dy = 0; dy < K; dy++) {
            const sy = y + dy - pad;
            if (sy < 0 || sy >= height) continue;
            for (let dx = 0; dx < K; dx++) {
              const sx = x + dx - pad;
              if (sx < 0 || sx >= width) continue;
              const inBase = ((b * height + sy) * width + sx) * C;
              for (let c = 0; c < C; c++) {
                const v = inp[inBase + c];
                if (v === 0) continue;
                const wBase = ((dy * K + dx) * C + c) * O;
                for (let o = 0; o < O; o++) dweight[wBase + o] += v * dout[outBase + o];
              }
            }
          }
        }
      }
    }
  },

  maxPool2x2({ out, inp, batch, height, width, channels }) {
    const outH = Math.floor(height / 2);
    const outW = Math.floor(width / 2);
    for (let b = 0; b < batch; b++) {
      for (let y = 0; y < outH; y++) {
        for (let x = 0; x < outW; x++) {
          const o = ((b * outH + y) * outW + x) * channels;
          const i00 = ((b * height + 2 * y) * width + 2 * x) * channels;
          const i01 = i00 + channels;
          const i10 = i00 + width * channels;
          const i11 = i10 + channels;
          for (let c = 0; c < channels; c++) {
            out[o + c] = Math.max(inp[i00 + c], inp[i01 + c], inp[i10 + c], inp[i11 + c]);
          }
        }
      }
    }
  },

  maxPool2x2Backward({ dinp, dout, inp, out, batch, height, width, channels }) {
    const outH = Math.floor(height / 2);
    const outW = Math.floor(width / 2);
    dinp.fill(0, 0, batch * height * width * channels);
    for (let b = 0; b < batch; b++) {
      for (let y = 0; y < outH; y++) {
        for (let x = 0; x < outW; x++) {
          const o = ((b * outH + y) * outW + x) * channels;
          const i00 = ((b * height + 2 * y) * width + 2 * x) * channels;
          const window = [i00, i00 + channels, i00 + width * channels, i00 + (width + 1) * channels];
          for (let c = 0; c < channels; c++) {
            const winner = window.find((i) => inp[i + c] === out[o + c]) ?? i00;
            dinp[winner + c] = dout[o + c];
          }
        }
      }
    }
  },

  // Batch normalisation: statistics and the backward pass's sums in float64, rows in order.
  batchNormStatistics({ mean, variance, inp, rows, channels }) {
    const sum = new Float64Array(channels);
    const squares = new Float64Array(channels);
    for (let r = 0; r < rows; r++) for (let c = 0; c < channels; c++) sum[c] += inp[r * channels + c];
    for (let c = 0; c < channels; c++) sum[c] /= rows;
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < channels; c++) {
        const d = inp[r * channels + c] - sum[c];
        squares[c] += d * d;
      }
    }
    for (let c = 0; c < channels; c++) {
      mean[c] = sum[c];
      variance[c] = squares[c] / rows;
    }
  },

  batchNormForward(args) {
    normalizeRows(args, false);
  },

  batchNormBackwardSums({ sumDout, sumDoutNormalized, dout, normalized, rows, channels }) {
    const dy = new Float64Array(channels);
    const dyx = new Float64Array(channels);
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < channels; c++) {
        const i = r * channels + c;
        dy[c] += dout[i];
        dyx[c] += dout[i] * normalized[i];
      }
    }
    sumDout.set(dy.subarray(0, channels));
    sumDoutNormalized.set(dyx.subarray(0, channels));
  },

  batchNormBackward({ dinp, dout, normalized, doutScale, offset, normalizedScale, rows, channels }) {
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < channels; c++) {
        const i = r * channels + c;
        dinp[i] = doutScale[c] * dout[i] - offset[c] - normalized[i] * normalizedScale[c];
      }
    }
  },

  batchNormReluForward(args) {
    normalizeRows(args, true);
  },

  // The per-channel arithmetic in float64, each result rounded once as it is stored.
  batchNormUpdate({ invStd, runningMean, runningVar, mean, variance, rows, channels, momentum, epsilon }) {
    for (let c = 0; c < channels; c++) {
      invStd[c] = 1 / Math.sqrt(variance[c] + epsilon);
      const unbiased = rows > 1 ? (variance[c] * rows) / (rows - 1) : variance[c];
      runningMean[c] = (1 - momentum) * runningMean[c] + momentum * mean[c];
      runningVar[c] = (1 - momentum) * runningVar[c] + momentum * unbiased;
    }
  },

  batchNormScaleShift({ scale, shift, gamma, beta, runningMean, runningVar, channels, epsilon }) {
    for (let c = 0; c < channels; c++) {
      scale[c] = gamma[c] / Math.sqrt(runningVar[c] + epsilon);
      shift[c] = beta[c] - runningMean[c] * scale[c];
    }
  },

  batchNormBackwardFactors({ doutScale, offset, normalizedScale, sumDout, sumDoutNormalized, gamma, invStd, rows, channels }) {
    for (let c = 0; c < channels; c++) {
      const scale = gamma[c] * invStd[c];
      doutScale[c] = scale;
      offset[c] = (scale * sumDout[c]) / rows;
      normalizedScale[c] = (scale * sumDoutNormalized[c]) / rows;
    }
  },

  channelAffine({ out, inp, scale, shift, rows, channels }) {
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < channels; c++) out[r * channels + c] = inp[r * channels + c] * scale[c] + shift[c];
    }
  },

  sgdStep({ param, grad, velocity, n, learningRate, momentum, nesterov, weightDecay }) {
    for (let i = 0; i < n; i++) {
      let g = grad[i] + weightDecay * param[i];
      if (momentum !== 0) {
        velocity[i] = momentum * velocity[i] + g;
        g = nesterov ? g + momentum * velocity[i] : velocity[i];
      }
      param[i] -= learningRate * g;
    }
  },

  adamStep({ param, grad, m, v, n, learningRate, beta1, beta2, epsilon, weightDecay, step }) {
    const correction1 = 1 - beta1 ** step;
    const correction2 = 1 - beta2 ** step;
    for (let i = 0; i < n; i++) {
      const g = grad[i] + weightDecay * param[i];
      m[i] = beta1 * m[i] + (1 - beta1) * g;
      v[i] = beta2 * v[i] + (1 - beta2) * g * g;
      const mHat = m[i] / correction1;
      const vHat = v[i] / correction2;
      param[i] -= (learningRate * mHat) / (Math.sqrt(vHat) + epsilon);
    }
  },
};

/**
 * A CPU backend as layers and training use it. Its tensors are Float32Arrays, and every kernel
 * takes any Float32Array (not only those it allocated); another backend's tensors are not.
 */
export function hostBackend(kernels: HostKernels): Kernels {
  return kernels as unknown as Kernels;
}

/** The reference backend. */
export const jsKernels: Kernels = hostBackend(referenceKernels);
