/**
 * Our engine's classifiers run on a worker thread: the forward pass is synchronous, and on the
 * server's main thread it would stop the event loop for its whole length. On its own thread it
 * runs while the event loop parses the next requests and sends the last answers, so on 2 cores
 * the HTTP work and the arithmetic overlap. The classifiers are ordinary ImageClassifiers (the
 * server does not know where they run); one thread serves all the models of a folder, one pass
 * at a time.
 *
 * The native backend's thread team (and its thread count) belongs to the process, not to a
 * thread: while this thread runs native kernels, no other thread may (`fmnist serve` runs them
 * on this thread only).
 */
import type { Worker } from 'node:worker_threads';
import { UserError } from '../errors.ts';
import type { ImageClassifier } from '../inference/classifier.ts';
import type { ClassifierWorkerSetup, FromClassifierWorker, ToClassifierWorker } from './classifier-worker.ts';
import { moduleWorker } from './threads.ts';

export interface ThreadClassifiers {
  classifiers: ImageClassifier[];
  /** Stops the thread; classify calls still waiting are rejected. */
  close(): Promise<void>;
}

/** The models of `dir` (see loadClassifiers) on a thread of their own, with the kernels of `backend`. */
export function loadThreadClassifiers(dir: string, options: Omit<ClassifierWorkerSetup, 'dir'> & { log?: (message: string) => void }): Promise<ThreadClassifiers> {
  const setup: ClassifierWorkerSetup = { dir, backend: options.backend, threads: options.threads };
  const worker: Worker = moduleWorker('classifier-worker', setup);
  const pending = new Map<number, { resolve: (probabilities: Float32Array) => void; reject: (error: Error) => void }>();
  let nextId = 0;
  let dead: Error | null = null;
  const failAll = (error: Error) => {
    dead ??= error;
    for (const { reject } of pending.values()) reject(error);
    pending.clear();
  };

  return new Promise((resolve, reject) => {
    worker.on('error', (error) => {
      failAll(error);
      reject(error);
    });
    worker.on('exit', (code) => {
      const error = new Error(`the forward-pass thread exited (code ${code})`);
      failAll(error);
      reject(error);
    });
    worker.on('message', (message: FromClassifierWorker) => {
      switch (message.type) {
        case 'log':
          options.log?.(message.message);
          return;
        case 'failed':
          reject(message.userError ? new UserError(message.message) : new Error(message.message));
          void worker.terminate();
          return;
        case 'result':
        case 'error': {
          const waiting = pending.get(message.id);
          pending.delete(message.id);
          if (message.type === 'result') waiting?.resolve(message.probabilities);
          else waiting?.reject(new Error(`forward pass failed: ${message.message}`));
          return;
        }
        case 'ready': {
          const classifiers = message.models.map(
            (model): ImageClassifier => ({
              ...model,
              runtime: `${model.runtime}, on a thread of its own`,
              classify(pixels, count) {
                if (dead) return Promise.reject(dead);
                const id = nextId++;
                const copy = Uint8Array.from(pixels);
                return new Promise((resolveClassify, rejectClassify) => {
                  pending.set(id, { resolve: resolveClassify, reject: rejectClassify });
                  const job: ToClassifierWorker = { id, model: model.name, pixels: copy, count };
                  worker.postMessage(job, [copy.buffer]);
                });
              },
            }),
          );
          resolve({
            classifiers,
            close: async () => {
              worker.removeAllListeners('exit');
              failAll(new Error('the forward-pass thread was closed'));
              await worker.terminate();
            },
          });
        }
      }
    });
  });
}
