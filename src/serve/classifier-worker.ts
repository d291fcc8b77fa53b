/**
 * The forward-pass thread of the server (see thread-classifiers.ts): loads the kernels and the
 * models of a folder, then answers classify requests one at a time, in order.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { UserError } from '../errors.ts';
import { loadClassifiers, type ImageClassifier } from '../inference/classifier.ts';
import { loadKernels, type BackendName } from '../kernels/index.ts';

export interface ClassifierWorkerSetup {
  dir: string;
  backend: BackendName | 'auto';
  threads?: number;
}

export type ToClassifierWorker = { id: number; model: string; pixels: Uint8Array; count: number };

export type FromClassifierWorker =
  | { type: 'log'; message: string }
  | { type: 'ready'; models: { name: string; kind: ImageClassifier['kind']; classNames: string[]; runtime: string }[] }
  | { type: 'failed'; message: string; userError: boolean }
  | { type: 'result'; id: number; probabilities: Float32Array }
  | { type: 'error'; id: number; message: string };

const port = parentPort!;
const send = (message: FromClassifierWorker, transfer: ArrayBuffer[] = []) => port.postMessage(message, transfer);
const setup = workerData as ClassifierWorkerSetup;

try {
  const kernels = await loadKernels(setup.backend, { threads: setup.threads, onFallback: (message) => send({ type: 'log', message }) });
  const classifiers = new Map((await loadClassifiers(setup.dir, kernels)).map((classifier) => [classifier.name, classifier]));
  port.on('message', async ({ id, model, pixels, count }: ToClassifierWorker) => {
    try {
      const probabilities = await classifiers.get(model)!.classify(pixels, count);
      send({ type: 'result', id, probabilities }, [probabilities.buffer as ArrayBuffer]);
    } catch (error) {
      send({ type: 'error', id, message: error instanceof Error ? (error.stack ?? error.message) : String(error) });
    }
  });
  send({
    type: 'ready',
    models: [...classifiers.values()].map(({ name, kind, classNames, runtime }) => ({ name, kind, classNames: [...classNames], runtime })),
  });
} catch (error) {
  send({ type: 'failed', message: error instanceof Error ? error.message : String(error), userError: error instanceof UserError });
}
