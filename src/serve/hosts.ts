/**
 * Where a server's models are loaded and run: our engine on a thread of its own (the default
 * of `fmnist serve`), our engine on the event loop's thread, or ONNX Runtime on the exported
 * models. A host loads a model folder under a name and unloads it again, so that a model
 * repository can change while the server runs.
 */
import { exportOnnx } from '../export/onnx.ts';
import { onnxClassifier } from '../export/onnx-runtime.ts';
import { modelFolders, ourClassifier, type ImageClassifier } from '../inference/classifier.ts';
import { Channel, threadEndpoint } from '../io/channel.ts';
import { UserError } from '../errors.ts';
import { loadKernels, type BackendName, type Kernels } from '../kernels/index.ts';
import type { ClassifierInfo, ClassifierRequest, ClassifierWorkerSetup } from './classifier-worker.ts';
import { moduleWorker } from './threads.ts';

export interface ModelHost {
  /** What computes the models, for messages. */
  readonly runtime: string;
  /** The model saved in `dir` (a model folder), loaded as the classifier `name`. */
  load(name: string, dir: string): Promise<ImageClassifier>;
  /** Gives back the memory of the model `name`; none of its classify calls may be in flight. */
  unload(name: string): Promise<void>;
  /** Unloads every model and stops what runs them. */
  close(): Promise<void>;
}

/** Models held by name, each closed when unloaded. */
class Loaded {
  private readonly models = new Map<string, ImageClassifier>();

  add(classifier: ImageClassifier): ImageClassifier {
    this.models.set(classifier.name, classifier);
    return classifier;
  }

  async remove(name: string): Promise<void> {
    const classifier = this.models.get(name);
    this.models.delete(name);
    await classifier?.close?.();
  }

  async clear(): Promise<void> {
    for (const name of [...this.models.keys()]) await this.remove(name);
  }
}

/** Our engine on the calling thread: a forward pass holds up the event loop for its length. */
export function localHost(kernels: Kernels & { close?: () => void }): ModelHost {
  const loaded = new Loaded();
  return {
    runtime: kernels.description,
    load: async (name, dir) => loaded.add(await ourClassifier(dir, kernels, name)),
    unload: (name) => loaded.remove(name),
    async close() {
      await loaded.clear();
      kernels.close?.();
    },
  };
}

/** ONNX Runtime on each model exported in memory (its own threads; the event loop stays free while it computes). */
export function onnxHost(threads: number): ModelHost {
  const loaded = new Loaded();
  return {
    runtime: `onnxruntime (${threads} thread${threads === 1 ? '' : 's'})`,
    load: async (name, dir) => loaded.add(await onnxClassifier(exportOnnx(dir), name, { threads })),
    unload: (name) => loaded.remove(name),
    close: () => loaded.clear(),
  };
}

/**
 * Our engine on a worker thread: the forward pass is synchronous, and on the server's main
 * thread it would stop the event loop for its whole length. On its own thread it runs while the
 * event loop parses the next requests and sends the last answers, so on 2 cores the HTTP work
 * and the arithmetic overlap. One thread serves every model, one request at a time in order.
 *
 * The native backend's thread team (and its thread count) belongs to the process, not to a
 * thread: while this thread runs native kernels, no other thread may (`fmnist serve` runs them
 * on this thread only).
 */
export async function threadHost(options: { backend: BackendName | 'auto'; threads?: number; log?: (line: string) => void }): Promise<ModelHost> {
  const setup: ClassifierWorkerSetup = { backend: options.backend, threads: options.threads };
  const channel = new Channel<ClassifierRequest, unknown>(threadEndpoint(moduleWorker('classifier-worker', setup)), {
    onLog: options.log,
    decodeError: (error) => (error.name === 'UserError' ? new UserError(error.message) : new Error(error.reason === 'classify' ? `forward pass failed: ${error.message}` : error.message)),
  });
  let runtime: string;
  try {
    runtime = (await channel.request({ type: 'start' })) as string;
  } catch (error) {
    await channel.close();
    throw error;
  }
  return {
    runtime: `${runtime}, on a thread of its own`,
    async load(name, dir) {
      const info = (await channel.request({ type: 'load', name, dir })) as ClassifierInfo;
      return {
        ...info,
        runtime: `${info.runtime}, on a thread of its own`,
        classify(pixels, count) {
          const copy = Uint8Array.from(pixels);
          return channel.request({ type: 'classify', name, pixels: copy, count }, { transfer: [copy.buffer] }) as Promise<Float32Array>;
        },
      };
    },
    unload: async (name) => void (await channel.request({ type: 'unload', name })),
    close: () => channel.close(),
  };
}

/** The host `fmnist serve` runs its models on: ONNX Runtime, or our engine on a thread of its own or on the event loop's. */
export async function serveHost(options: { runtime: 'ours' | 'onnx'; forwardThread: boolean; backend: BackendName | 'auto'; threads: number; log: (line: string) => void }): Promise<ModelHost> {
  if (options.runtime === 'onnx') return onnxHost(options.threads);
  if (options.forwardThread) return threadHost(options);
  return localHost(await loadKernels(options.backend, { threads: options.threads, onFallback: options.log }));
}

/** Every model of a folder (a model folder, or a pipeline's three: see modelFolders), loaded on `host`. */
export async function loadFolder(host: ModelHost, dir: string): Promise<ImageClassifier[]> {
  const classifiers: ImageClassifier[] = [];
  for (const folder of modelFolders(dir)) classifiers.push(await host.load(folder.name, folder.dir));
  return classifiers;
}
