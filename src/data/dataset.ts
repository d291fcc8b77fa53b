import { PIXELS } from './idx.ts';
import type { LabelledImages } from './load.ts';

/**
 * Examples as the training loop sees them: a count, labels, and a way to write any chosen
 * examples as float rows into a batch buffer. Images stay one byte a pixel until then.
 */
export interface Examples {
  count: number;
  /** Floats per example. */
  featureSize: number;
  labels: Uint8Array;
  /** Writes examples indices[start .. start+batch) as rows of `out` ([batch, featureSize]). */
  gather(out: Float32Array, indices: ArrayLike<number>, start: number, batch: number): void;
}

/** Pixels scaled from 0..255 to [0, 1] as they are gathered. */
export function pixelExamples(images: LabelledImages): Examples {
  const scale = 1 / 255;
  const pixels = images.pixels;
  return {
    count: images.count,
    featureSize: PIXELS,
    labels: images.labels,
    gather(out, indices, start, batch) {
      for (let b = 0; b < batch; b++) {
        const source = indices[start + b] * PIXELS;
        const target = b * PIXELS;
        for (let i = 0; i < PIXELS; i++) out[target + i] = pixels[source + i] * scale;
      }
    },
  };
}

/** Examples 0, 1, ..., count - 1 in order. */
export function identityOrder(count: number): Int32Array {
  const order = new Int32Array(count);
  for (let i = 0; i < count; i++) order[i] = i;
  return order;
}
