/**
 * The decoding thread of the server (see decoder.ts): PNG and JPEG bytes in, Fashion-MNIST
 * images out. Decoding in plain JavaScript takes seconds for a large photo, which on the main
 * thread would hold up every other request.
 */
import { parentPort } from 'node:worker_threads';
import { fashionImage, ImageError, type ImageOptions } from '../inference/images.ts';

export interface DecodeJob {
  id: number;
  bytes: Uint8Array;
  options: ImageOptions;
}

export type DecodeResult =
  | { id: number; pixels: Uint8Array; inverted: boolean }
  | { id: number; error: { message: string; reason: ImageError['reason'] | 'internal' } };

parentPort!.on('message', ({ id, bytes, options }: DecodeJob) => {
  let result: DecodeResult;
  try {
    const image = fashionImage(bytes, options);
    result = { id, pixels: image.pixels, inverted: image.inverted };
  } catch (error) {
    result = error instanceof ImageError ? { id, error: { message: error.message, reason: error.reason } } : { id, error: { message: String(error), reason: 'internal' } };
  }
  parentPort!.postMessage(result, 'pixels' in result ? [result.pixels.buffer as ArrayBuffer] : []);
});
