/**
 * The models a server has, by name, and their states: loaded at start, and loaded and unloaded
 * again while the server runs (the protocol's model repository extension). A request takes a
 * ready model for its duration; an unload waits until the model's requests in flight have been
 * answered, so none is dropped, and a load of one model never holds up requests to another.
 *
 * Where the models come from: the folder of `fmnist serve --model DIR` (its one model, or a
 * pipeline's three), or every model folder under `--model-repository DIR`, looked for again at
 * each index and load, so that a folder added while the server runs can be loaded by name.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { modelFolders, type ImageClassifier } from '../inference/classifier.ts';
import { PipelineFolder } from '../runs/run-folder.ts';
import { Batcher } from './batcher.ts';
import type { ModelHost } from './hosts.ts';
import { ClientError } from './protocol.ts';

/** Every model has the one version. */
export const MODEL_VERSION = '1';

export type ModelState = 'READY' | 'LOADING' | 'UNLOADING' | 'UNAVAILABLE';

/** A model folder and the name it is served under. */
export interface ModelSource {
  name: string;
  dir: string;
}

/** Counts and cumulative nanoseconds, as the statistics extension reports them. */
export interface Duration {
  count: number;
  ns: number;
}

/** A model's statistics (the protocol's statistics extension, as Triton reports them). */
export class ModelStatistics {
  /** Milliseconds since the epoch of the last inference, 0 before any. */
  lastInference = 0;
  /** Images classified. */
  inferenceCount = 0;
  /** Forward passes run. */
  executionCount = 0;
  readonly success: Duration = { count: 0, ns: 0 };
  readonly fail: Duration = { count: 0, ns: 0 };
  readonly queue: Duration = { count: 0, ns: 0 };
  readonly computeInfer: Duration = { count: 0, ns: 0 };

  /** A request answered (or failed) after `seconds` in all. */
  request(ok: boolean, seconds: number): void {
    const duration = ok ? this.success : this.fail;
    duration.count++;
    duration.ns += Math.round(seconds * 1e9);
  }

  /** A request's images: how long they waited for their pass and how long the pass took. */
  pass(images: number, queueSeconds: number, computeSeconds: number): void {
    this.inferenceCount += images;
    this.lastInference = Date.now();
    this.queue.count++;
    this.queue.ns += Math.round(queueSeconds * 1e9);
    this.computeInfer.count++;
    this.computeInfer.ns += Math.round(computeSeconds * 1e9);
  }

  /** The statistics extension's JSON for this model. */
  toJson(name: string): object {
    const duration = ({ count, ns }: Duration) => ({ count, ns });
    return {
      name,
      version: MODEL_VERSION,
      last_inference: this.lastInference,
      inference_count: this.inferenceCount,
      execution_count: this.executionCount,
      inference_stats: {
        success: duration(this.success),
        fail: duration(this.fail),
        queue: duration(this.queue),
        compute_input: { count: 0, ns: 0 },
        compute_infer: duration(this.computeInfer),
        compute_output: { count: 0, ns: 0 },
      },
    };
  }
}

/** A loaded model, ready for requests: its classifier, the batcher its requests share passes through, its statistics. */
export interface Served {
  name: string;
  classifier: ImageClassifier;
  batcher: Batcher;
  statistics: ModelStatistics;
}

interface Entry {
  source: ModelSource;
  state: ModelState;
  /** Why it is unavailable (a failed load), or empty. */
  reason: string;
  served: Served | null;
  /** The load or unload under way. */
  change: Promise<void> | null;
  inFlight: number;
  /** Called when the last request in flight is answered (an unload waits for it). */
  drained: (() => void) | null;
}

/** The models of one folder (`fmnist serve --model DIR`): a model folder's one, or a pipeline's three. */
export function folderModels(dir: string): () => ModelSource[] {
  const models = modelFolders(dir);
  return () => models;
}

/**
 * The models of a repository folder: each model folder directly under it (named by the folder)
 * and each pipeline's three (named <folder>-mlp, <folder>-cnn, <folder>-cnn-features-mlp).
 */
export function repositoryModels(root: string): () => ModelSource[] {
  return () => {
    const sources: ModelSource[] = [];
    const folders = readdirSync(root).filter((name) => !name.startsWith('.') && statSync(join(root, name)).isDirectory()).sort();
    for (const folder of folders) {
      const dir = join(root, folder);
      if (PipelineFolder.isPipeline(dir) || existsSync(join(dir, 'pipeline.json'))) {
        for (const model of modelFolders(dir)) sources.push({ name: `${folder}-${model.name}`, dir: model.dir });
      } else if (existsSync(join(dir, 'model.json'))) {
        sources.push({ name: folder, dir });
      }
    }
    return sources;
  };
}

/** How a model's requests share forward passes (see Batcher). */
export interface Batching {
  maxBatch: number;
  maxWaitMs: number;
}

export class ModelRepository {
  private readonly entries = new Map<string, Entry>();
  /** Told after each forward pass of any model (the server's metrics). */
  onBatch: ((model: string, images: number, seconds: number) => void) | null = null;

  constructor(
    private readonly host: ModelHost,
    /** The models there are, looked for again at each index and load. */
    private readonly find: () => ModelSource[],
    readonly batching: Batching,
  ) {}

  /** A repository of classifiers already loaded, all ready (a library's caller's own; unloading one only stops serving it). */
  static ofClassifiers(classifiers: readonly ImageClassifier[], batching: Batching): ModelRepository {
    const names = classifiers.map((classifier) => classifier.name);
    if (names.length === 0 || new Set(names).size !== names.length) throw new Error(`serve needs at least one model, each with its own name; got [${names.join(', ')}]`);
    const byName = new Map(classifiers.map((classifier) => [classifier.name, classifier]));
    const host: ModelHost = {
      runtime: [...new Set(classifiers.map((classifier) => classifier.runtime))].join(', '),
      load: async (name) => byName.get(name)!,
      unload: async () => {},
      close: async () => {},
    };
    const repository = new ModelRepository(host, () => names.map((name) => ({ name, dir: '' })), batching);
    repository.refresh();
    for (const classifier of classifiers) {
      const entry = repository.entries.get(classifier.name)!;
      entry.served = repository.serve(classifier);
      entry.state = 'READY';
      entry.reason = '';
    }
    return repository;
  }

  /** A loaded classifier, wrapped for requests: its batcher and statistics. */
  private serve(classifier: ImageClassifier): Served {
    const statistics = new ModelStatistics();
    const batcher = new Batcher(classifier, {
      ...this.batching,
      onBatch: (images, seconds) => {
        statistics.executionCount++;
        this.onBatch?.(classifier.name, images, seconds);
      },
      onRequest: (images, queueSeconds, computeSeconds) => statistics.pass(images, queueSeconds, computeSeconds),
    });
    return { name: classifier.name, classifier, batcher, statistics };
  }

  /** What computes the models. */
  get runtime(): string {
    return this.host.runtime;
  }

  /** Loads every model there is; throws the first failure (a server must not start with a model it cannot load). */
  async loadAll(): Promise<void> {
    this.refresh();
    for (const name of this.entries.keys()) {
      await this.load(name);
      const entry = this.entries.get(name)!;
      if (entry.state !== 'READY') throw new Error(entry.reason);
    }
  }

  /** Every model there is, by name, with its state (the repository extension's index). */
  index(): { name: string; version: string; state: ModelState; reason: string }[] {
    this.refresh();
    return [...this.entries.values()]
      .sort((a, b) => a.source.name.localeCompare(b.source.name))
      .map(({ source, state, reason }) => ({ name: source.name, version: MODEL_VERSION, state, reason }));
  }

  /** The names of the models ready to answer. */
  readyNames(): string[] {
    return [...this.entries.values()].filter((entry) => entry.state === 'READY').map((entry) => entry.source.name);
  }

  /** Whether every model that is not unloaded on purpose is ready (the server's readiness). */
  get ready(): boolean {
    return [...this.entries.values()].every((entry) => entry.state === 'READY' || (entry.state === 'UNAVAILABLE' && entry.reason === 'unloaded'));
  }

  /** The model `name` and its state, or a ClientError 404 where there is none of that name. */
  private entry(name: string): Entry {
    let entry = this.entries.get(name);
    if (!entry) {
      this.refresh();
      entry = this.entries.get(name);
    }
    if (!entry) throw new ClientError(404, `no model "${name.slice(0, 100)}"; this server has: ${[...this.entries.keys()].join(', ') || 'none'}`);
    return entry;
  }

  /** The model's state (ready, loading, unloading, unavailable); 404 where there is none of that name. */
  state(name: string): ModelState {
    return this.entry(name).state;
  }

  /** The model, loaded or not: its source. */
  source(name: string): ModelSource {
    return this.entry(name).source;
  }

  /** The ready model for one request, counted in flight until `done`; a ClientError 404 (none of that name) or 503 (not ready). */
  acquire(name: string): { served: Served; done(): void } {
    const entry = this.entry(name);
    if (entry.state !== 'READY' || !entry.served) {
      const why = entry.state === 'LOADING' ? 'is loading' : entry.state === 'UNLOADING' ? 'is being unloaded' : `is not loaded (${entry.reason}); load it with POST /v2/repository/models/${name}/load`;
      throw new ClientError(503, `model "${name}" ${why}`);
    }
    entry.inFlight++;
    let done = false;
    return {
      served: entry.served,
      done: () => {
        if (done) return;
        done = true;
        entry.inFlight--;
        if (entry.inFlight === 0) entry.drained?.();
      },
    };
  }

  /** The ready model `name` (its statistics and classifier), without taking it for a request. */
  served(name: string): Served | null {
    return this.entry(name).served;
  }

  /** Loads the model `name` (again where it is loaded: unloaded once its requests are answered, then loaded afresh); a load under way is waited for. */
  async load(name: string): Promise<void> {
    const entry = this.entry(name);
    const failed = () => new ClientError(400, `model "${name}" could not be loaded: ${entry.reason}`);
    if (entry.state === 'LOADING') {
      await entry.change;
      if (!this.isReady(entry)) throw failed();
      return;
    }
    if (entry.change) await entry.change;
    if (entry.state === 'READY') await this.unload(name);
    entry.state = 'LOADING';
    entry.change = (async () => {
      try {
        const classifier = await this.host.load(name, entry.source.dir);
        entry.served = this.serve(classifier);
        entry.state = 'READY';
        entry.reason = '';
      } catch (error) {
        entry.state = 'UNAVAILABLE';
        entry.reason = error instanceof Error ? error.message : String(error);
      } finally {
        entry.change = null;
      }
    })();
    await entry.change;
    if (!this.isReady(entry)) throw failed();
  }

  /** Whether the entry is ready now (its state read afresh after an await). */
  private isReady(entry: Entry): boolean {
    return entry.state === 'READY';
  }

  /** Unloads the model `name` once its requests in flight are answered; new requests are refused (503) meanwhile. */
  async unload(name: string): Promise<void> {
    const entry = this.entry(name);
    // Refused from this call on, unless a change under way must finish first.
    if (entry.change) await entry.change;
    if (entry.state !== 'READY') return;
    entry.state = 'UNLOADING';
    entry.change = (async () => {
      if (entry.inFlight > 0) await new Promise<void>((resolve) => (entry.drained = resolve));
      entry.drained = null;
      entry.served = null;
      try {
        await this.host.unload(name);
      } finally {
        entry.state = 'UNAVAILABLE';
        entry.reason = 'unloaded';
        entry.change = null;
      }
    })();
    await entry.change;
  }

  /** Unloads everything and stops the host. */
  async close(): Promise<void> {
    for (const entry of this.entries.values()) await entry.change?.catch(() => {});
    await this.host.close();
  }

  /** Adds the models found since the last look (models whose folder went stay, as they are). */
  refresh(): void {
    for (const source of this.find()) {
      if (!this.entries.has(source.name)) this.entries.set(source.name, { source, state: 'UNAVAILABLE', reason: 'not loaded', served: null, change: null, inFlight: 0, drained: null });
    }
  }
}
