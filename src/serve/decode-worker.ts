/**
 * The decoding thread of the server (see decoder.ts): PNG and JPEG bytes in, Fashion-MNIST
 * images out. Decoding in plain JavaScript takes seconds for a large photo, which on the main
 * thread would hold up every other request.
 */
import { parentPort } from 'node:worker_threads';
import { fashionImage, ImageError, type ImageOptions } from '../inference/images.ts';
import type { FashionImage } from '../inference/preprocess.ts';
import { answerRequests, parentThread, remoteError } from '../io/channel.ts';

export interface DecodeJob {
  bytes: Uint8Array;
  options: ImageOptions;
}

answerRequests<DecodeJob, FashionImage>(
  parentThread(parentPort!),
  async ({ bytes, options }) => {
    const image = fashionImage(bytes, options);
    return { value: image, transfer: [image.pixels.buffer as ArrayBuffer] };
  },
  // An image that cannot be read keeps its reason; anything else is a failure of the decoder.
  (error) => (error instanceof ImageError ? { message: error.message, name: error.name, reason: error.reason } : { ...remoteError(error), reason: 'internal' }),
);
