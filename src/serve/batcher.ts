/**
 * Dynamic batching: requests to one model that arrive close together share one forward pass.
 * A forward pass costs little more for 64 images than for 1 (the products run far faster on
 * wide matrices), so under load the server answers many requests for the price of one.
 *
 * A pass starts when `maxBatch` images are waiting, or when the oldest waiting request has
 * waited `maxWaitMs`; one pass runs at a time. While a pass runs, new requests queue up (on a
 * thread of its own the event loop reads them meanwhile; on the event loop's thread they wait
 * in their sockets); the next pass is started from a timer or setImmediate, never directly, so
 * that the event loop first reads what has arrived and it joins that pass.
 */
import type { ImageClassifier } from '../inference/classifier.ts';
import { PIXELS } from '../data/idx.ts';

export interface BatcherOptions {
  /** Most images in one forward pass; a request with more runs alone. */
  maxBatch: number;
  /** Longest a request waits for others before its pass starts, in milliseconds (0: only those already waiting). */
  maxWaitMs: number;
  /** Told after each pass: how many images, and how long the forward pass took (seconds). */
  onBatch?: (images: number, seconds: number) => void;
  /** Told of each request a pass answered: its images, how long it waited for the pass and how long the pass took (seconds). */
  onRequest?: (images: number, queueSeconds: number, computeSeconds: number) => void;
}

interface Waiting {
  pixels: Uint8Array;
  count: number;
  /** performance.now() at submit, milliseconds. */
  arrived: number;
  resolve: (probabilities: Float32Array) => void;
  reject: (error: unknown) => void;
}

export class Batcher {
  private readonly queue: Waiting[] = [];
  private queuedImages = 0;
  private running = false;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private immediate: ReturnType<typeof setImmediate> | null = null;

  constructor(
    private readonly classifier: Pick<ImageClassifier, 'classify' | 'classNames'>,
    private readonly options: BatcherOptions,
  ) {
    if (!(options.maxBatch >= 1) || !(options.maxWaitMs >= 0)) throw new RangeError(`maxBatch must be at least 1 and maxWaitMs at least 0, got ${options.maxBatch} and ${options.maxWaitMs}`);
  }

  /** Images waiting for a pass. */
  get waiting(): number {
    return this.queuedImages;
  }

  /** Probabilities [count, classes] of `count` images, `pixels` [count, 28, 28] bytes. */
  submit(pixels: Uint8Array, count: number): Promise<Float32Array> {
    if (pixels.length !== count * PIXELS) return Promise.reject(new RangeError(`${count} images need ${count * PIXELS} bytes, got ${pixels.length}`));
    return new Promise((resolve, reject) => {
      this.queue.push({ pixels, count, arrived: performance.now(), resolve, reject });
      this.queuedImages += count;
      this.schedule();
    });
  }

  /** Arranges the next pass: soon when a batch is full (or nothing may wait), else when the oldest request's wait is over. */
  private schedule(): void {
    if (this.running || this.queue.length === 0 || this.immediate !== null) return;
    const wait = this.queue[0].arrived + this.options.maxWaitMs - performance.now();
    if (this.queuedImages >= this.options.maxBatch || wait <= 0) {
      if (this.timer !== null) clearTimeout(this.timer);
      this.timer = null;
      this.immediate = setImmediate(() => {
        this.immediate = null;
        void this.runPass();
      });
      return;
    }
    this.timer ??= setTimeout(() => {
      this.timer = null;
      void this.runPass();
    }, wait);
  }

  /** One forward pass over the oldest requests, up to maxBatch images (whole requests only). */
  private async runPass(): Promise<void> {
    if (this.running || this.queue.length === 0) return;
    this.running = true;
    const batch: Waiting[] = [];
    let images = 0;
    while (this.queue.length > 0 && (batch.length === 0 || images + this.queue[0].count <= this.options.maxBatch)) {
      const next = this.queue.shift()!;
      batch.push(next);
      images += next.count;
    }
    this.queuedImages -= images;
    const pixels = new Uint8Array(images * PIXELS);
    let offset = 0;
    for (const request of batch) {
      pixels.set(request.pixels, offset * PIXELS);
      offset += request.count;
    }
    try {
      const started = performance.now();
      const probabilities = await this.classifier.classify(pixels, images);
      const seconds = (performance.now() - started) / 1000;
      this.options.onBatch?.(images, seconds);
      const classes = this.classifier.classNames.length;
      offset = 0;
      for (const request of batch) {
        this.options.onRequest?.(request.count, (started - request.arrived) / 1000, seconds);
        request.resolve(probabilities.slice(offset * classes, (offset + request.count) * classes));
        offset += request.count;
      }
    } catch (error) {
      for (const request of batch) request.reject(error);
    } finally {
      this.running = false;
      this.schedule();
    }
  }
}
