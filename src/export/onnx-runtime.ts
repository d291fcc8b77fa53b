/**
 * Exported models run by ONNX Runtime (onnxruntime-node, its CPU build), behind the same
 * ImageClassifier interface as our engine: what the export tests, `fmnist serve --runtime onnx`
 * and the inference benchmark compare ours with.
 */
import { InferenceSession, Tensor, env } from 'onnxruntime-node';
import { IMAGE_SIZE, NUM_CLASSES, PIXELS } from '../data/idx.ts';
import type { LabelledImages } from '../data/load.ts';
import { argmax } from '../evaluation/predict.ts';
import { modelFolders, ourClassifier, type ImageClassifier } from '../inference/classifier.ts';
import type { Kernels } from '../kernels/index.ts';
import { RunFolder } from '../runs/run-folder.ts';
import { exportOnnx, ONNX_INPUT, ONNX_OUTPUT, type OnnxModel } from './onnx.ts';

export interface OnnxRuntimeOptions {
  /** ONNX Runtime's intra-op threads (one operator split over them); default 1. */
  threads?: number;
  /**
   * Most images per session run; larger requests are run in chunks of this size. Bounds the
   * activations (the CNN's first layers hold 32 floats per pixel: 100 MB for 1,024 images).
   */
  maxBatch?: number;
}

/** Images as the graph takes them: bytes / 255 in float32, as our pixel input is computed. */
function scaledImages(pixels: Uint8Array, start: number, count: number): Float32Array {
  const images = new Float32Array(count * PIXELS);
  const source = pixels.subarray(start * PIXELS, (start + count) * PIXELS);
  for (let i = 0; i < images.length; i++) images[i] = source[i] / 255;
  return images;
}

/** An ONNX Runtime session of `model` as a classifier; `close` releases the session. */
export async function onnxClassifier(model: OnnxModel, name: string, options: OnnxRuntimeOptions = {}): Promise<ImageClassifier & { close(): Promise<void> }> {
  const threads = options.threads ?? 1;
  const maxBatch = options.maxBatch ?? 1024;
  const session = await InferenceSession.create(model.bytes, {
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
  });
  return {
    name,
    kind: model.kind,
    classNames: model.classNames,
    runtime: `onnxruntime ${env.versions.common} (CPU, ${threads} thread${threads === 1 ? '' : 's'})`,
    async classify(pixels, count) {
      const probabilities = new Float32Array(count * NUM_CLASSES);
      for (let start = 0; start < count; start += maxBatch) {
        const batch = Math.min(maxBatch, count - start);
        const input = new Tensor('float32', scaledImages(pixels, start, batch), [batch, 1, IMAGE_SIZE, IMAGE_SIZE]);
        const result = await session.run({ [ONNX_INPUT]: input });
        probabilities.set(result[ONNX_OUTPUT].data as Float32Array, start * NUM_CLASSES);
      }
      return probabilities;
    },
    close: () => session.release(),
  };
}

/**
 * Every model of a folder (a model folder, or a pipeline's three: see modelFolders), exported
 * in memory and loaded into ONNX Runtime: what `fmnist serve --runtime onnx` serves.
 */
export async function loadOnnxClassifiers(dir: string, options: OnnxRuntimeOptions = {}): Promise<ImageClassifier[]> {
  const folders = modelFolders(dir);
  const classifiers: ImageClassifier[] = [];
  for (const folder of folders) classifiers.push(await onnxClassifier(exportOnnx(folder.dir), folder.name, options));
  return classifiers;
}

/** How two classifiers agree on the same images (e.g. our engine and ONNX Runtime on the test set). */
export interface RuntimeComparison {
  images: number;
  /** Images both give the same most probable class. */
  sameClass: number;
  /** Largest |p - q| over every image and class. */
  maxDifference: number;
  /** Accuracy of each against the labels: [first, second]. */
  accuracy: [number, number];
}

function predictions(probabilities: Float32Array, count: number): Uint8Array {
  const classes = new Uint8Array(count);
  for (let i = 0; i < count; i++) classes[i] = argmax(probabilities, i * NUM_CLASSES, NUM_CLASSES);
  return classes;
}

/** Runs both classifiers over `images` and compares their probabilities and classes. */
export async function compareClassifiers(first: ImageClassifier, second: ImageClassifier, images: LabelledImages): Promise<RuntimeComparison> {
  const p = await first.classify(images.pixels, images.count);
  const q = await second.classify(images.pixels, images.count);
  const [a, b] = [predictions(p, images.count), predictions(q, images.count)];
  let maxDifference = 0;
  for (let i = 0; i < p.length; i++) maxDifference = Math.max(maxDifference, Math.abs(p[i] - q[i]));
  let sameClass = 0;
  const correct = [0, 0];
  for (let i = 0; i < images.count; i++) {
    if (a[i] === b[i]) sameClass++;
    if (a[i] === images.labels[i]) correct[0]++;
    if (b[i] === images.labels[i]) correct[1]++;
  }
  return { images: images.count, sameClass, maxDifference, accuracy: [correct[0] / images.count, correct[1] / images.count] };
}

export interface ExportCheck {
  /** The model's name: its kind in a pipeline, else the folder's name. */
  name: string;
  /** Our engine against ONNX Runtime on the test images (first: ours). */
  comparison: RuntimeComparison;
  /** The test accuracy recorded in metrics.json when the model was trained, if any. */
  recordedAccuracy: number | null;
}

/**
 * Each model of `dir` exported and run by ONNX Runtime on `images` beside our engine on
 * `kernels`: whether the export computes what the model computes.
 */
export async function checkOnnxExport(dir: string, kernels: Kernels, images: LabelledImages, options: OnnxRuntimeOptions = {}): Promise<ExportCheck[]> {
  const checks: ExportCheck[] = [];
  for (const folder of modelFolders(dir)) {
    const theirs = await onnxClassifier(exportOnnx(folder.dir), folder.name, options);
    try {
      const comparison = await compareClassifiers(await ourClassifier(folder.dir, kernels, folder.name), theirs, images);
      checks.push({ name: folder.name, comparison, recordedAccuracy: new RunFolder(folder.dir).recordedTestAccuracy() });
    } finally {
      await theirs.close();
    }
  }
  return checks;
}
