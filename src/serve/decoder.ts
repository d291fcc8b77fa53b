/**
 * Image decoding off the event loop: a worker thread runs fashionImage (decode, preprocess) so
 * that a large photo (seconds in plain JavaScript) does not hold up the other requests. Jobs are
 * answered in order by one thread; the forward passes run on the main thread meanwhile.
 */
import type { Worker } from 'node:worker_threads';
import { ImageError, type ImageOptions } from '../inference/images.ts';
import type { FashionImage } from '../inference/preprocess.ts';
import type { DecodeJob, DecodeResult } from './decode-worker.ts';
import { moduleWorker } from './threads.ts';

interface Pending {
  worker: Worker;
  resolve: (image: FashionImage) => void;
  reject: (error: Error) => void;
}

export class ImageDecoder {
  private worker: Worker | null = null;
  private readonly pending = new Map<number, Pending>();
  private nextId = 0;

  /** The image in Fashion-MNIST's form; rejects with an ImageError for a file that is not one this can read. */
  decode(bytes: Uint8Array, options: ImageOptions): Promise<FashionImage> {
    const worker = this.start();
    const id = this.nextId++;
    // A copy: the body may share its memory with other buffers (Node's pool), and it is transferred.
    const copy = Uint8Array.from(bytes);
    return new Promise((resolve, reject) => {
      this.pending.set(id, { worker, resolve, reject });
      const job: DecodeJob = { id, bytes: copy, options };
      worker.postMessage(job, [copy.buffer]);
    });
  }

  async close(): Promise<void> {
    const worker = this.worker;
    this.worker = null;
    await worker?.terminate();
  }

  /** The worker, started on first use and again after it died (its jobs failed with it). */
  private start(): Worker {
    if (this.worker) return this.worker;
    const worker = moduleWorker('decode-worker');
    // It never keeps a process alive on its own; the server closes it.
    worker.unref();
    worker.on('message', (result: DecodeResult) => {
      const pending = this.pending.get(result.id);
      this.pending.delete(result.id);
      if (!pending) return;
      if ('pixels' in result) pending.resolve({ pixels: result.pixels, inverted: result.inverted });
      else if (result.error.reason === 'internal') pending.reject(new Error(`decoding failed: ${result.error.message}`));
      else pending.reject(new ImageError(result.error.message, result.error.reason));
    });
    const fail = (error: Error) => {
      if (this.worker === worker) this.worker = null;
      for (const [id, pending] of this.pending) {
        if (pending.worker !== worker) continue;
        this.pending.delete(id);
        pending.reject(error);
      }
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`the decoding thread exited (code ${code})`)));
    this.worker = worker;
    return worker;
  }
}
