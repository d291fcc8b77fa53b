/**
 * The page's own engine, on its thread: the loaded models run on what a person draws or
 * uploads, on single-threaded WebAssembly kernels or on WebGPU (the engine switch). A model is
 * rebuilt from the same two files the CLI writes (model.json, model.safetensors), whether the
 * server sent them or the training worker made them, and follows its input transform as
 * `fmnist evaluate` does.
 */
import type { ServedModel } from '../src/app/api.ts';
import { pixelExamples, type Examples } from '../src/data/dataset.ts';
import { NUM_CLASSES } from '../src/data/idx.ts';
import type { LabelledImages } from '../src/data/verify.ts';
import { evaluate, testFlipShape } from '../src/evaluation/predict.ts';
import type { Kernels } from '../src/kernels/types.ts';
import { loadBrowserWasmKernels } from '../src/kernels/wasm/browser.ts';
import { loadBrowserWebGpuKernels } from '../src/kernels/webgpu/browser.ts';
import { SoftmaxCrossEntropy } from '../src/layers/softmax-cross-entropy.ts';
import { cnnFeatureInput } from '../src/models/features.ts';
import { MODEL_JSON, MODEL_WEIGHTS, modelFromWeights, parseModelDescription, type ModelDescription } from '../src/models/model-format.ts';
import type { Sequential } from '../src/models/sequential.ts';
import type { ModelFiles, PageEngine } from './protocol.ts';
import { WASM_URLS } from './wasm.ts';

/** A model the page can run: where it came from, and its probabilities for images. */
export interface PageModel {
  /** Unique in the page: `server:<name>` or `page:<n>`. */
  id: string;
  /** What the page calls it. */
  label: string;
  kind: string;
  description: ModelDescription;
  files: ModelFiles;
  /** What computes it: the kernels' description. */
  runtime: string;
  /** Softmax probabilities [count, 10] of `count` 28x28 images (bytes, light on dark). */
  classify(pixels: Uint8Array, count: number): Promise<Float32Array>;
  /** The same model on another engine (this one is given back: do not use it afterwards). */
  moveTo(engine: PageEngine): Promise<PageModel>;
}

const kernels: Partial<Record<PageEngine, Promise<Kernels>>> = {};

/** The page thread's kernels: WebAssembly on one thread (so the page never waits on workers), or WebGPU. */
export function pageKernels(engine: PageEngine): Promise<Kernels> {
  return (kernels[engine] ??= engine === 'webgpu' ? loadBrowserWebGpuKernels() : loadBrowserWasmKernels({ urls: WASM_URLS, threads: 1 }));
}

/** A model from its files, on `engine`; `extractor` is the CNN whose features an MLP on features takes. */
export async function pageModel(id: string, label: string, files: ModelFiles, extractor: ModelFiles | null, where: string, engine: PageEngine): Promise<PageModel> {
  const k = await pageKernels(engine);
  const { description } = files;
  const model = modelFromWeights(description, files.weights, k, { dir: where, weightsPath: `${where}${MODEL_WEIGHTS}` });
  const loss = new SoftmaxCrossEntropy(k, NUM_CLASSES);
  let input: (images: LabelledImages) => Promise<Examples> = async (images) => pixelExamples(images);
  let cnn: Sequential | null = null;
  if (description.input.type === 'cnn-features') {
    const transform = description.input;
    if (extractor === null) throw new Error(`${label} needs the CNN its features come from`);
    cnn = modelFromWeights(extractor.description, extractor.weights, k, { dir: `${where}extractor/`, weightsPath: `${where}extractor/${MODEL_WEIGHTS}` });
    input = cnnFeatureInput(k, cnn, transform.featureLayer, transform);
  }
  return {
    id,
    label,
    kind: description.kind,
    description,
    files,
    runtime: k.description,
    moveTo: async (to) => {
      const moved = await pageModel(id, label, files, extractor, where, to);
      model.dispose();
      cnn?.dispose();
      loss.dispose();
      return moved;
    },
    classify: async (pixels, count) => {
      const examples = await input({ count, pixels, labels: new Uint8Array(count) });
      return (await evaluate(k, model, loss, examples, undefined, testFlipShape(description.testTimeFlip))).probabilities;
    },
  };
}

async function fetchOk(url: URL): Promise<Response> {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url.pathname} answered ${response.status}`);
  return response;
}

/** The two files of a served model folder. */
async function fetchModelFiles(base: URL): Promise<ModelFiles> {
  const jsonUrl = new URL(MODEL_JSON, base);
  const description = parseModelDescription(await (await fetchOk(jsonUrl)).text(), jsonUrl.pathname);
  const weights = new Uint8Array(await (await fetchOk(new URL(MODEL_WEIGHTS, base))).arrayBuffer());
  return { description, weights };
}

/** A model of the server's run folder (fmnist app --model DIR). */
export async function servedModel(served: ServedModel, page: URL, engine: PageEngine): Promise<PageModel> {
  const base = new URL(served.path, page);
  const files = await fetchModelFiles(base);
  const extractor = served.extractorPath ? await fetchModelFiles(new URL(served.extractorPath, page)) : null;
  return pageModel(`server:${served.name}`, served.name, files, extractor, base.pathname, engine);
}
