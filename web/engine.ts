/**
 * The page's own engine, on its thread: the loaded models run on what a person draws, uploads
 * or shows the camera, on single-threaded WebAssembly kernels or on WebGPU (the engine switch).
 * A model is rebuilt from the files the CLI writes (model.json, model.safetensors), whoever made
 * them (the server's run folder, the training worker, the browser's store, a dropped folder),
 * and runs as the library's classifier (src/inference/model-classifier.ts: batch normalisation
 * folded, the input transform followed, test-time flipping), as `fmnist predict` runs it.
 */
import type { ServedModel } from '../src/app/api.ts';
import type { TestMetrics } from '../src/evaluation/metrics.ts';
import { decodeNpy } from '../src/io/npy-format.ts';
import type { Kernels } from '../src/kernels/types.ts';
import type { WasmKernels } from '../src/kernels/wasm/backend.ts';
import { loadBrowserWasmKernels } from '../src/kernels/wasm/browser.ts';
import { loadBrowserWebGpuKernels } from '../src/kernels/webgpu/browser.ts';
import { engineClassifier, type EngineClassifier, type InsideLayer } from '../src/inference/model-classifier.ts';
import { modelFromWeights, type ModelDescription } from '../src/models/model-format.ts';
import { RUN_FILES, type ModelKind, type RunMetrics } from '../src/runs/run-files.ts';
import type { EpochRecord } from '../src/training/fit.ts';
import { percent } from './dom.ts';
import { modelFilesOf } from './model-files.ts';
import type { PageEngine, RunFileMap } from './protocol.ts';
import type { RunView } from './state.ts';
import { WASM_URLS } from './wasm.ts';

export { modelFilesOf } from './model-files.ts';

/** Where a model came from: kept in the browser (trained in the page, or dropped onto it), the server's run folder, or made in this visit and not kept (a stopped run's best epoch). */
export type ModelSource = 'kept' | 'server' | 'page';

/** A model the page can run: where it came from, its files, and its probabilities for images. */
export interface PageModel {
  /** Unique in the page: `kept:<key>`, `server:<name>` or `page:<n>`. */
  id: string;
  /** What the page calls it. */
  label: string;
  kind: ModelKind;
  source: ModelSource;
  description: ModelDescription;
  /** Its run's files by name: model.json and model.safetensors, and history.json, metrics.json, config.json, test_probabilities.npy where it has them. */
  files: RunFileMap;
  /** For an MLP on CNN features, the CNN's files. */
  extractor: RunFileMap | null;
  /** What computes it: the kernels' description. */
  runtime: string;
  /** Softmax probabilities [count, 10] of `count` 28x28 images (bytes, light on dark). */
  classify(pixels: Uint8Array, count: number): Promise<Float32Array>;
  /** Each layer's output for one image. */
  inside(pixels: Uint8Array): Promise<InsideLayer[]>;
  /** The same model on another engine (this one is closed: do not use it afterwards). */
  moveTo(engine: PageEngine): Promise<PageModel>;
  close(): Promise<void>;
}

const kernels: Partial<Record<PageEngine, Promise<Kernels>>> = {};

/** The page thread's kernels: WebAssembly on one thread (so the page never waits on workers), or WebGPU. */
export function pageKernels(engine: PageEngine): Promise<Kernels> {
  return (kernels[engine] ??= engine === 'webgpu' ? loadBrowserWebGpuKernels() : loadBrowserWasmKernels({ urls: WASM_URLS, threads: 1 }));
}

/** The page's WebAssembly memory: bytes its tensors hold and the memory's size (which never shrinks); null before it is loaded. */
export async function pageMemory(): Promise<{ liveBytes: number; memoryBytes: number } | null> {
  if (kernels.wasm === undefined) return null;
  return ((await kernels.wasm) as WasmKernels).usage();
}

const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

/** A model from its run's files, on `engine`; `extractor` is the CNN whose features an MLP on features takes. */
export async function pageModel(
  meta: { id: string; label: string; source: ModelSource; where: string },
  files: RunFileMap,
  extractor: RunFileMap | null,
  engine: PageEngine,
): Promise<PageModel> {
  const k = await pageKernels(engine);
  const { where } = meta;
  const { description, weights } = modelFilesOf(files, where);
  if (description.input.type === 'cnn-features' && extractor === null) throw new Error(`${meta.label} takes the features of the CNN in ${description.input.extractor}, which is not there`);
  const model = modelFromWeights(description, weights, k, { dir: where, weightsPath: `${where}${RUN_FILES.weights}` });
  let cnn = null;
  if (extractor !== null && description.input.type === 'cnn-features') {
    const own = modelFilesOf(extractor, `${where}extractor/`);
    cnn = modelFromWeights(own.description, own.weights, k, { dir: `${where}extractor/`, weightsPath: `${where}extractor/${RUN_FILES.weights}` });
  }
  const classifier: EngineClassifier = await engineClassifier(k, meta.label, { model, description }, cnn);
  return {
    ...meta,
    kind: classifier.kind,
    description,
    files,
    extractor,
    runtime: k.description,
    classify: (pixels, count) => classifier.classify(pixels, count),
    inside: (pixels) => classifier.inside(pixels),
    moveTo: async (to) => {
      const moved = await pageModel(meta, files, extractor, to);
      await classifier.close();
      return moved;
    },
    close: () => classifier.close(),
  };
}

/** A run's figures for Look, from its files (history.json, metrics.json, test_probabilities.npy), or null where it has not the first two. */
export function runFromFiles(id: string, title: string, files: RunFileMap): RunView | null {
  const historyBytes = files.get(RUN_FILES.history);
  const metricsBytes = files.get(RUN_FILES.metrics);
  if (historyBytes === undefined || metricsBytes === undefined) return null;
  const history = JSON.parse(text(historyBytes)) as EpochRecord[];
  const metrics = JSON.parse(text(metricsBytes)) as RunMetrics & { test: TestMetrics };
  let probabilities: Float32Array | null = null;
  const npy = files.get(RUN_FILES.testProbabilities);
  if (npy !== undefined) {
    const array = decodeNpy(npy, RUN_FILES.testProbabilities);
    probabilities = array.dtype === 'float32' ? array.data : null;
  }
  return {
    id,
    title,
    history,
    bestEpoch: metrics.bestEpoch,
    test: metrics.test,
    probabilities,
    facts: [
      ['test accuracy', percent(metrics.test.accuracy)],
      ['validation accuracy', `${percent(metrics.validation.accuracy)} (epoch ${metrics.bestEpoch})`],
      ['epochs run', `${metrics.epochsRun}${metrics.stoppedEarly ? ' (stopped early)' : ''}`],
      ['training time', `${metrics.trainingSeconds.toFixed(1)} s`],
      ['parameters', metrics.parameterCount.toLocaleString('en-US')],
      ['backend', metrics.backend],
    ],
  };
}

async function fetchOk(url: URL): Promise<Uint8Array> {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url.pathname} answered ${response.status}`);
  return new Uint8Array(await response.arrayBuffer());
}

/** The files the server offers of a model (and of its extractor). */
export async function servedFiles(served: ServedModel, page: URL): Promise<{ files: RunFileMap; extractor: RunFileMap | null }> {
  const base = new URL(served.path, page);
  const files: RunFileMap = new Map(await Promise.all(served.files.map(async (name) => [name, await fetchOk(new URL(name, base))] as const)));
  let extractor: RunFileMap | null = null;
  if (served.extractorPath) {
    const extractorBase = new URL(served.extractorPath, page);
    extractor = new Map(await Promise.all([RUN_FILES.model, RUN_FILES.weights].map(async (name) => [name, await fetchOk(new URL(name, extractorBase))] as const)));
  }
  return { files, extractor };
}
