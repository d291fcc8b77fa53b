import type { Kernels, Tensor } from '../kernels/index.ts';
import type { Rng } from '../random/rng.ts';
import { IMAGE_SIZE, PIXELS } from './idx.ts';
import type { LabelledImages } from './verify.ts';

/**
 * Examples as the training loop sees them: a count, labels, and a way to write any chosen
 * examples as float rows into a batch buffer.
 */
export interface Examples {
  count: number;
  /** Floats per example. */
  featureSize: number;
  labels: Uint8Array;
  /**
   * Writes examples indices[start .. start+batch) as rows of `out` ([batch, featureSize]), with
   * the kernels of the training that asks; `epoch` (1-based) is the training's, where it asks.
   */
  gather(out: Tensor, indices: Int32Array, start: number, batch: number, kernels: Kernels, epoch?: number): void;
}

/** A host buffer of at least `length` floats, grown as needed: where examples computed in the host's memory are assembled before their write. */
function hostRows(): (length: number) => Float32Array {
  let rows = new Float32Array(0);
  return (length) => {
    if (rows.length < length) rows = new Float32Array(length);
    return rows.subarray(0, length);
  };
}

/** Pixels scaled from 0..255 to [0, 1] as a batch is gathered, by the kernels. */
export function pixelExamples(images: LabelledImages): Examples {
  return {
    count: images.count,
    featureSize: PIXELS,
    labels: images.labels,
    gather(out, indices, start, batch, kernels) {
      kernels.gatherPixels({ out, pixels: images.pixels, indices, start, count: batch, rowLength: PIXELS });
    },
  };
}

/** Examples 0, 1, ..., count - 1 in order. */
export function identityOrder(count: number): Int32Array {
  const order = new Int32Array(count);
  for (let i = 0; i < count; i++) order[i] = i;
  return order;
}

export interface Augmentation {
  /** Largest shift in pixels, each direction drawn uniformly from -maxShift .. maxShift. */
  maxShift: number;
  /** Mirror left-right with probability 1/2. */
  flip: boolean;
  /**
   * With `flip`: mirror each image in alternate epochs instead, from a first choice per image
   * drawn (1/2 each) when the examples are made: every image is seen both ways in any two
   * epochs running.
   */
  alternateFlip?: boolean;
  /**
   * Random erasing (Zhong et al., 2017): with this probability, a rectangle of 2% to 40% of the
   * image, aspect ratio 0.3 to 3.3, at a random place, is overwritten with uniform noise in
   * [0, 1]. 0 (or absent): none, and no number is drawn for it.
   */
  erase?: number;
}

/** Overwrites a random rectangle of one [28, 28] image with noise, as Augmentation.erase says. */
function eraseRectangle(image: Float32Array, offset: number, rng: Rng): void {
  for (let attempt = 0; attempt < 10; attempt++) {
    const area = PIXELS * (0.02 + 0.38 * rng.uniform());
    const aspect = Math.exp(Math.log(0.3) + (Math.log(1 / 0.3) - Math.log(0.3)) * rng.uniform());
    const height = Math.round(Math.sqrt(area * aspect));
    const width = Math.round(Math.sqrt(area / aspect));
    if (height < 1 || width < 1 || height >= IMAGE_SIZE || width >= IMAGE_SIZE) continue;
    const top = rng.int(IMAGE_SIZE - height + 1);
    const left = rng.int(IMAGE_SIZE - width + 1);
    for (let y = top; y < top + height; y++) {
      for (let x = left; x < left + width; x++) image[offset + y * IMAGE_SIZE + x] = rng.uniform();
    }
    return;
  }
}

/**
 * Writes the [28, 28] image at pixels[source ..] into out[target ..], mirrored left to right
 * where asked and then shifted by (dy, dx) pixels, each pixel times `scale`; vacated pixels are
 * 0, the background.
 */
export function shiftImage(out: { [index: number]: number }, target: number, pixels: Uint8Array, source: number, dy: number, dx: number, mirror: boolean, scale: number): void {
  for (let y = 0; y < IMAGE_SIZE; y++) {
    const sy = y - dy;
    for (let x = 0; x < IMAGE_SIZE; x++) {
      const shifted = x - dx;
      const sx = mirror ? IMAGE_SIZE - 1 - shifted : shifted;
      const inside = sy >= 0 && sy < IMAGE_SIZE && shifted >= 0 && shifted < IMAGE_SIZE;
      out[target + y * IMAGE_SIZE + x] = inside ? pixels[source + sy * IMAGE_SIZE + sx] * scale : 0;
    }
  }
}

/**
 * Pixels scaled to [0, 1], each example shifted and mirrored at random as it is gathered (for
 * training only). Vacated pixels are 0, the background. Draws from `rng` alone; alternating
 * flips need the epoch of each gather.
 */
export function augmentedPixelExamples(images: LabelledImages, augmentation: Augmentation, rng: Rng): Examples {
  const scale = 1 / 255;
  const pixels = images.pixels;
  const { maxShift, flip } = augmentation;
  const erase = augmentation.erase ?? 0;
  // Whether each image is mirrored in odd epochs (and so not in even ones), with alternating flips.
  const mirroredFirst = flip && augmentation.alternateFlip ? Uint8Array.from({ length: images.count }, () => (rng.uniform() < 0.5 ? 1 : 0)) : null;
  const staging = hostRows();
  return {
    count: images.count,
    featureSize: PIXELS,
    labels: images.labels,
    gather(into, indices, start, batch, kernels, epoch) {
      if (mirroredFirst && epoch === undefined) throw new Error('alternating flips need the epoch of each gather');
      const out = staging(batch * PIXELS);
      for (let b = 0; b < batch; b++) {
        const index = indices[start + b];
        const source = index * PIXELS;
        const target = b * PIXELS;
        const dy = rng.int(2 * maxShift + 1) - maxShift;
        const dx = rng.int(2 * maxShift + 1) - maxShift;
        const mirror = mirroredFirst ? mirroredFirst[index] === (epoch ?? 1) % 2 : flip && rng.uniform() < 0.5;
        shiftImage(out, target, pixels, source, dy, dx, mirror, scale);
        if (erase > 0 && rng.uniform() < erase) eraseRectangle(out, target, rng);
      }
      kernels.write(into, out);
    },
  };
}

/** Feature vectors x [count, size] with their labels y [count] (a pipeline's saved CNN features). */
export interface FeaturePart {
  x: Float32Array;
  size: number;
  y: Uint8Array;
}

/** Float feature vectors [count, size], standardised as gathered: (x - mean) / std per feature. */
export function featureExamples(features: Float32Array, size: number, labels: Uint8Array, mean: Float32Array, std: Float32Array): Examples {
  const scale = Float32Array.from(std, (s) => 1 / s);
  const staging = hostRows();
  return {
    count: labels.length,
    featureSize: size,
    labels,
    gather(into, indices, start, batch, kernels) {
      const out = staging(batch * size);
      for (let b = 0; b < batch; b++) {
        const source = indices[start + b] * size;
        const row = b * size;
        for (let i = 0; i < size; i++) out[row + i] = (features[source + i] - mean[i]) * scale[i];
      }
      kernels.write(into, out);
    },
  };
}

/**
 * Per-feature mean and standard deviation of [count, size] features, in float64. A feature
 * that never varies (a ReLU that never fires) gets std 1, so standardising leaves it at 0.
 */
export function featureStatistics(features: Float32Array, size: number): { mean: Float32Array; std: Float32Array } {
  const count = features.length / size;
  const sum = new Float64Array(size);
  const sumSquares = new Float64Array(size);
  for (let r = 0; r < count; r++) {
    for (let i = 0; i < size; i++) {
      const v = features[r * size + i];
      sum[i] += v;
      sumSquares[i] += v * v;
    }
  }
  const mean = new Float32Array(size);
  const std = new Float32Array(size);
  for (let i = 0; i < size; i++) {
    const m = sum[i] / count;
    const variance = Math.max(sumSquares[i] / count - m * m, 0);
    mean[i] = m;
    std[i] = variance > 1e-12 ? Math.sqrt(variance) : 1;
  }
  return { mean, std };
}
