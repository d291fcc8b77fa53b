/**
 * Image decoding off the event loop: a worker thread runs fashionImage (decode, preprocess) so
 * that a large photo (seconds in plain JavaScript) does not hold up the other requests. Jobs are
 * answered in order by one thread; the forward passes run elsewhere meanwhile.
 */
import { ImageError, type ImageOptions } from '../inference/images.ts';
import type { FashionImage } from '../inference/preprocess.ts';
import { Channel, threadEndpoint } from '../io/channel.ts';
import type { DecodeJob } from './decode-worker.ts';
import { moduleWorker } from './threads.ts';

export class ImageDecoder {
  private channel: Channel<DecodeJob, FashionImage> | null = null;

  /** The image in Fashion-MNIST's form; rejects with an ImageError for a file that is not one this can read. */
  decode(bytes: Uint8Array, options: ImageOptions): Promise<FashionImage> {
    // A copy: the body may share its memory with other buffers (Node's pool), and it is transferred.
    const copy = Uint8Array.from(bytes);
    return this.start().request({ bytes: copy, options }, { transfer: [copy.buffer] });
  }

  async close(): Promise<void> {
    const channel = this.channel;
    this.channel = null;
    await channel?.close();
  }

  /** The worker, started on first use and again after it died (its jobs failed with it). */
  private start(): Channel<DecodeJob, FashionImage> {
    if (this.channel && !this.channel.closed) return this.channel;
    const worker = moduleWorker('decode-worker');
    // It never keeps a process alive on its own; the server closes it.
    worker.unref();
    this.channel = new Channel(threadEndpoint(worker), {
      decodeError: (error) => (error.reason === 'internal' || error.reason === undefined ? new Error(`decoding failed: ${error.message}`) : new ImageError(error.message, error.reason as ImageError['reason'])),
    });
    return this.channel;
  }
}
