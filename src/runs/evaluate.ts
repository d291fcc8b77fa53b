import { NUM_CLASSES } from '../data/idx.ts';
import { loadTestSet } from '../data/load.ts';
import { locateData, type LocateOptions } from '../data/locate.ts';
import { testMetrics, type TestMetrics } from '../evaluation/metrics.ts';
import { evaluate, testFlipShape } from '../evaluation/predict.ts';
import { loadKernels, type BackendName, type Kernels } from '../kernels/index.ts';
import { SoftmaxCrossEntropy } from '../layers/softmax-cross-entropy.ts';
import { modelInput } from '../inference/classifier.ts';
import type { ModelDescription } from '../models/model-file.ts';
import { RunFolder } from './run-folder.ts';

export interface SavedEvaluation {
  description: ModelDescription;
  test: TestMetrics;
  /** [10000, 10] softmax probabilities of the test images. */
  probabilities: Float32Array;
  /** Test accuracy recorded in the folder's metrics.json when the model was trained, if any. */
  recordedAccuracy: number | null;
}

/** Loads a saved model (any kind) and evaluates it on the official test set. */
export async function evaluateSavedModel(
  dir: string,
  options: {
    data?: LocateOptions;
    allowModifiedData?: boolean;
    backend?: BackendName | 'auto';
    threads?: number;
    /** Kernels to use instead of loading the backend (a caller evaluating several models shares one). */
    kernels?: Kernels;
  } = {},
): Promise<SavedEvaluation> {
  const kernels = options.kernels ?? (await loadKernels(options.backend ?? 'auto', { threads: options.threads }));
  const folder = new RunFolder(dir);
  const { model, description } = folder.loadModel(kernels);
  const location = await locateData(options.data);
  const images = loadTestSet(location.dir, { allowModified: options.allowModifiedData }).data;
  const input = await modelInput(kernels, dir, description);
  const examples = await input.examples(images);
  input.dispose();
  const loss = new SoftmaxCrossEntropy(kernels, NUM_CLASSES);
  const evaluation = await evaluate(kernels, model, loss, examples, undefined, testFlipShape(description.testTimeFlip));
  loss.dispose();
  model.dispose();
  return {
    description,
    test: testMetrics(images.labels, evaluation.predictions, evaluation.accuracy, evaluation.loss),
    probabilities: evaluation.probabilities,
    recordedAccuracy: folder.recordedTestAccuracy(),
  };
}
