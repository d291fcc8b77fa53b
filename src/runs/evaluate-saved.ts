import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pixelExamples } from '../data/dataset.ts';
import { NUM_CLASSES } from '../data/idx.ts';
import { loadTestSet } from '../data/load.ts';
import { locateData, type LocateOptions } from '../data/locate.ts';
import { evaluate } from '../evaluation/predict.ts';
import { loadModel, type ModelDescription } from '../io/model-file.ts';
import { loadKernels, type BackendName } from '../kernels/index.ts';
import { SoftmaxCrossEntropy } from '../layers/softmax-cross-entropy.ts';
import { testMetrics, type TestMetrics } from './train-mlp.ts';

export interface SavedEvaluation {
  description: ModelDescription;
  test: TestMetrics;
  /** Test accuracy recorded in the folder's metrics.json when the model was trained, if any. */
  recordedAccuracy: number | null;
}

/** Loads a saved model and evaluates it on the official test set. */
export async function evaluateSavedModel(
  dir: string,
  options: { data?: LocateOptions; allowModifiedData?: boolean; backend?: BackendName | 'auto'; threads?: number } = {},
): Promise<SavedEvaluation> {
  const kernels = await loadKernels(options.backend ?? 'auto', { threads: options.threads });
  const { model, description } = loadModel(dir, kernels);
  const location = await locateData(options.data);
  const testSet = loadTestSet(location.dir, { allowModified: options.allowModifiedData });
  const evaluation = evaluate(kernels, model, new SoftmaxCrossEntropy(kernels, NUM_CLASSES), pixelExamples(testSet.data));
  const metricsPath = join(dir, 'metrics.json');
  let recordedAccuracy: number | null = null;
  if (existsSync(metricsPath)) {
    const recorded = JSON.parse(readFileSync(metricsPath, 'utf8')) as { test?: { accuracy?: number } };
    recordedAccuracy = recorded.test?.accuracy ?? null;
  }
  return {
    description,
    test: testMetrics(testSet.data.labels, evaluation.predictions, evaluation.accuracy, evaluation.loss),
    recordedAccuracy,
  };
}
