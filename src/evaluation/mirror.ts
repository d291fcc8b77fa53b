/**
 * Test-time flipping in one pass: a batch and its mirror images go through the model together,
 * as 2·batch rows, so that one image to classify is a batch of two (split over two threads by
 * images, each layer's weights read once) rather than two batches of one. Every row's output is
 * the same to the bit as alone: no kernel mixes the rows of a batch in evaluation mode.
 */
import type { Kernels, Tensor } from '../kernels/types.ts';

/**
 * Writes the mirror images of the `batch` images at the start of `input` ([height, width,
 * channels] each, `flip`) right after them: `input` then holds 2·batch images, which the caller
 * runs through the model in one pass (rows [0, batch) its own, [batch, 2·batch) the mirrors').
 */
export function appendMirrors(kernels: Kernels, input: Tensor, batch: number, flip: readonly number[]): void {
  const size = flip[0] * flip[1] * flip[2];
  kernels.mirrorImages({
    out: input.subarray(batch * size, 2 * batch * size),
    inp: input.subarray(0, batch * size),
    batch,
    height: flip[0],
    width: flip[1],
    channels: flip[2],
  });
}

/** out[0 .. rowSize·batch) = the mean of rows [0, batch) and [batch, 2·batch) of `output` (an image's and its mirror's). */
export function averageMirrors(kernels: Kernels, out: Tensor, output: Tensor, batch: number, rowSize: number): void {
  const n = batch * rowSize;
  kernels.average({ out, a: output.subarray(0, n), b: output.subarray(n, 2 * n), n });
}

/** The images per batch when each comes with its mirror: half of `batchSize` (at least 1), so that a pass keeps `batchSize` rows. */
export function imagesPerPass(batchSize: number, flip: readonly number[] | null): number {
  return flip ? Math.max(1, Math.floor(batchSize / 2)) : batchSize;
}
