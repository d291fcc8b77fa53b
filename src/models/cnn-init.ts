/**
 * Two ways of starting the CNN closer to where it trains to, from airbench's CIFAR-10 speed
 * records: a first convolution that whitens the images' patches (computed from the training
 * split, then frozen), and identity (Dirac) filters in the later convolutions, so that at first
 * each block passes its input on and training starts from a shallow network.
 */
import { IMAGE_SIZE } from '../data/idx.ts';
import type { LabelledImages } from '../data/verify.ts';
import type { Sequential } from './sequential.ts';

/** Added to each eigenvalue before its square root is taken: keeps the directions of least variance (mostly noise) from being blown up. */
export const WHITENING_EPSILON = 5e-4;

/**
 * Eigenvalues and eigenvectors of a symmetric n x n matrix (row-major, float64) by cyclic Jacobi
 * rotations, in order of decreasing eigenvalue: `vectors` row k is the eigenvector of
 * `values[k]`. Meant for small matrices (a patch covariance, 9 x 9).
 */
export function symmetricEigen(matrix: Float64Array, n: number): { values: Float64Array; vectors: Float64Array } {
  const a = Float64Array.from(matrix);
  // v's columns become the eigenvectors.
  const v = new Float64Array(n * n);
  for (let i = 0; i < n; i++) v[i * n + i] = 1;
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0;
    for (let p = 0; p < n; p++) for (let q = p + 1; q < n; q++) off += a[p * n + q] ** 2;
    if (off < 1e-30) break;
    for (let p = 0; p < n; p++) {
      for (let q = p + 1; q < n; q++) {
        const apq = a[p * n + q];
        if (apq === 0) continue;
        // The rotation in the (p, q) plane that zeroes a[p][q].
        const theta = (a[q * n + q] - a[p * n + p]) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        for (let k = 0; k < n; k++) {
          const akp = a[k * n + p];
          const akq = a[k * n + q];
          a[k * n + p] = c * akp - s * akq;
          a[k * n + q] = s * akp + c * akq;
        }
        for (let k = 0; k < n; k++) {
          const apk = a[p * n + k];
          const aqk = a[q * n + k];
          a[p * n + k] = c * apk - s * aqk;
          a[q * n + k] = s * apk + c * aqk;
        }
        for (let k = 0; k < n; k++) {
          const vkp = v[k * n + p];
          const vkq = v[k * n + q];
          v[k * n + p] = c * vkp - s * vkq;
          v[k * n + q] = s * vkp + c * vkq;
        }
      }
    }
  }
  const order = Array.from({ length: n }, (_, i) => i).sort((i, j) => a[j * n + j] - a[i * n + i]);
  const values = Float64Array.from(order, (i) => a[i * n + i]);
  const vectors = new Float64Array(n * n);
  order.forEach((column, row) => {
    for (let k = 0; k < n; k++) vectors[row * n + k] = v[k * n + column];
  });
  return { values, vectors };
}

/**
 * The covariance (float64, [k·k, k·k], row-major) of every k x k patch lying wholly inside the
 * images, pixels scaled to [0, 1] as the network sees them; a patch's elements in row-major
 * order (the order of a convolution's [k, k, 1, filters] weight).
 */
export function patchCovariance(images: LabelledImages, kernelSize: number): Float64Array {
  const d = kernelSize * kernelSize;
  const last = IMAGE_SIZE - kernelSize;
  const sum = new Float64Array(d);
  const products = new Float64Array(d * d);
  const patch = new Float64Array(d);
  let count = 0;
  for (let image = 0; image < images.count; image++) {
    const base = image * IMAGE_SIZE * IMAGE_SIZE;
    for (let y = 0; y <= last; y++) {
      for (let x = 0; x <= last; x++) {
        for (let ky = 0; ky < kernelSize; ky++) {
          for (let kx = 0; kx < kernelSize; kx++) patch[ky * kernelSize + kx] = images.pixels[base + (y + ky) * IMAGE_SIZE + x + kx] / 255;
        }
        for (let i = 0; i < d; i++) {
          const pi = patch[i];
          sum[i] += pi;
          for (let j = i; j < d; j++) products[i * d + j] += pi * patch[j];
        }
        count++;
      }
    }
  }
  const covariance = new Float64Array(d * d);
  for (let i = 0; i < d; i++) {
    for (let j = i; j < d; j++) {
      const value = products[i * d + j] / count - (sum[i] / count) * (sum[j] / count);
      covariance[i * d + j] = value;
      covariance[j * d + i] = value;
    }
  }
  return covariance;
}

/**
 * Whitening filters for a first convolution of k x k over one channel: each eigenvector of the
 * training patches' covariance scaled by 1 / sqrt(eigenvalue + WHITENING_EPSILON), and its
 * negative (so that a ReLU after it keeps both signs), in order of decreasing eigenvalue:
 * [k, k, 1, 2·k·k], the layout of Conv2D's weight.
 */
export function whiteningFilters(images: LabelledImages, kernelSize: number): Float32Array {
  const d = kernelSize * kernelSize;
  const { values, vectors } = symmetricEigen(patchCovariance(images, kernelSize), d);
  const filters = 2 * d;
  const weight = new Float32Array(d * filters);
  for (let k = 0; k < d; k++) {
    const scale = 1 / Math.sqrt(Math.max(values[k], 0) + WHITENING_EPSILON);
    for (let i = 0; i < d; i++) {
      weight[i * filters + 2 * k] = vectors[k * d + i] * scale;
      weight[i * filters + 2 * k + 1] = -vectors[k * d + i] * scale;
    }
  }
  return weight;
}

/** Indices of the model's convolution layers, in order. */
export function convolutionLayers(model: Sequential): number[] {
  return model.architecture.layers.flatMap((spec, index) => (spec.type === 'conv2d' ? [index] : []));
}

/**
 * Sets, in `values` (a host copy of the model's parameters), the first convolution's first
 * filters to `whitening` ([k, k, 1, w], from whiteningFilters; as many as the layer has, the
 * rest keeping theirs) and its bias to 0.
 */
export function setWhitening(model: Sequential, values: Float32Array, whitening: Float32Array): void {
  const layer = convolutionLayers(model)[0];
  const [kh, kw, channels, filters] = model.parameters.find((p) => p.name === `layers.${layer}.weight`)!.shape;
  if (channels !== 1) throw new Error(`whitening needs a first convolution over one channel, not ${channels}`);
  const given = whitening.length / (kh * kw);
  const weight = model.parameterIn(values, layer, 'weight');
  for (let tap = 0; tap < kh * kw; tap++) {
    for (let f = 0; f < Math.min(given, filters); f++) weight[tap * filters + f] = whitening[tap * given + f];
  }
  model.parameterIn(values, layer, 'bias').fill(0);
}

/**
 * Dirac initialisation of every convolution but the first, in `values`: filter f < min(in, out)
 * becomes the identity of input channel f (1 at the kernel's centre, 0 elsewhere); the others
 * keep their draw.
 */
export function setDirac(model: Sequential, values: Float32Array): void {
  for (const layer of convolutionLayers(model).slice(1)) {
    const [kh, kw, channels, filters] = model.parameters.find((p) => p.name === `layers.${layer}.weight`)!.shape;
    const weight = model.parameterIn(values, layer, 'weight');
    const centre = ((kh - 1) / 2) * kw + (kw - 1) / 2;
    for (let f = 0; f < Math.min(channels, filters); f++) {
      for (let tap = 0; tap < kh * kw; tap++) {
        for (let c = 0; c < channels; c++) weight[(tap * channels + c) * filters + f] = tap === centre && c === f ? 1 : 0;
      }
    }
  }
}
