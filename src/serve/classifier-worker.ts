/**
 * The forward-pass thread of the server (see hosts.ts's threadHost): loads the kernels, then
 * loads, unloads and runs models as the main thread asks, one request at a time, in order.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { ourClassifier, type ImageClassifier } from '../inference/classifier.ts';
import { answerRequests, parentThread, remoteError } from '../io/channel.ts';
import { loadKernels, type BackendName, type Kernels } from '../kernels/index.ts';

export interface ClassifierWorkerSetup {
  backend: BackendName | 'auto';
  threads?: number;
}

/** What the main thread asks: start (the kernels' description back), load a model folder under a name, unload one, classify images. */
export type ClassifierRequest =
  | { type: 'start' }
  | { type: 'load'; name: string; dir: string }
  | { type: 'unload'; name: string }
  | { type: 'classify'; name: string; pixels: Uint8Array; count: number };

/** A loaded model as the main thread sees it. */
export type ClassifierInfo = Pick<ImageClassifier, 'name' | 'kind' | 'classNames' | 'runtime'>;

const setup = workerData as ClassifierWorkerSetup;
const models = new Map<string, ImageClassifier>();
let kernels: Promise<Kernels> | null = null;
// One request at a time: a load must not overlap a forward pass on the same kernels.
let queue: Promise<unknown> = Promise.resolve();

const channel = answerRequests<ClassifierRequest, unknown>(
  parentThread(parentPort!),
  (request) => {
    const turn = queue.then(() => handle(request));
    queue = turn.catch(() => {});
    return turn;
  },
  (error) => ({ ...remoteError(error), reason: (error as { during?: string }).during }),
);

async function handle(request: ClassifierRequest): Promise<{ value: unknown; transfer?: ArrayBuffer[] }> {
  kernels ??= loadKernels(setup.backend, { threads: setup.threads, onFallback: channel.log });
  const k = await kernels;
  switch (request.type) {
    case 'start':
      return { value: k.description };
    case 'load': {
      await models.get(request.name)?.close?.();
      const classifier = await ourClassifier(request.dir, k, request.name);
      models.set(request.name, classifier);
      const { name, kind, classNames, runtime } = classifier;
      return { value: { name, kind, classNames: [...classNames], runtime } satisfies ClassifierInfo };
    }
    case 'unload':
      await models.get(request.name)?.close?.();
      models.delete(request.name);
      return { value: null };
    case 'classify': {
      const classifier = models.get(request.name);
      if (!classifier) throw new Error(`no model ${request.name} is loaded on the forward-pass thread`);
      try {
        const probabilities = await classifier.classify(request.pixels, request.count);
        return { value: probabilities, transfer: [probabilities.buffer as ArrayBuffer] };
      } catch (error) {
        throw Object.assign(error as Error, { during: 'classify' });
      }
    }
  }
}
