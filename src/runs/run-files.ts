/**
 * A training run's files as names and bytes, without file access: the one place their names
 * are declared and their contents encoded. run-folder.ts writes and reads them in a folder; the
 * app's server serves them from one; the web app makes them in the page (its runs are kept in
 * the browser and offered for download as these files).
 */
import { NUM_CLASSES } from '../data/idx.ts';
import type { TestMetrics } from '../evaluation/metrics.ts';
import { encodeNpy } from '../io/npy-format.ts';
import { MODEL_JSON, MODEL_WEIGHTS } from '../models/model-format.ts';
import type { CnnConfig, MlpConfig } from './configs.ts';

/** The kinds of model a run trains. */
export type ModelKind = 'mlp' | 'cnn' | 'cnn-features-mlp';

export const MODEL_KINDS: readonly ModelKind[] = ['mlp', 'cnn', 'cnn-features-mlp'];

/** The file (or folder) names of a training run's folder; see run-folder.ts for what each holds. */
export const RUN_FILES = {
  config: 'config.json',
  history: 'history.json',
  metrics: 'metrics.json',
  checkpoint: 'checkpoint',
  testProbabilities: 'test_probabilities.npy',
  split: 'split.npy',
  model: MODEL_JSON,
  weights: MODEL_WEIGHTS,
} as const;

/**
 * The files of a model's run that show it and its figures: the model, its history and test
 * figures, the configuration it was trained with. What `fmnist app` serves of a run folder and
 * what the page keeps of its own runs.
 */
export const MODEL_RUN_FILES = [RUN_FILES.model, RUN_FILES.weights, RUN_FILES.history, RUN_FILES.metrics, RUN_FILES.config, RUN_FILES.testProbabilities] as const;

/** The two files of a model itself. */
export const MODEL_FILES = [RUN_FILES.model, RUN_FILES.weights] as const;

/** config.json: everything needed to repeat the run. */
export interface RunConfigFile<C = MlpConfig | CnnConfig> {
  model: ModelKind;
  config: C;
  version: string;
  /** Pixel models: the data folder and each file's checksum and status. */
  data?: { dir: string; origin: string; files: { file: string; sha256: string; status: string }[] };
  /** The MLP on features: the features folder and the CNN that made them. */
  features?: string;
  extractor?: string;
  /** What ran it: Node's version for the CLI, the browser's user agent for the web app. */
  software?: { node: string } | { browser: string };
}

/** metrics.json: the figures of a finished run. */
export interface RunMetrics {
  kind: ModelKind;
  test: TestMetrics;
  /** At the epoch whose weights were kept. */
  validation: { accuracy: number; loss: number };
  bestEpoch: number;
  epochsRun: number;
  stoppedEarly: boolean;
  /** Sum of the epochs' seconds: the same whether or not the run was interrupted. */
  trainingSeconds: number;
  parameterCount: number;
  backend: string;
}

/** A JSON file of a run as the folder holds it: two-space indented, ending with a newline. */
export function jsonFileText(value: unknown): string {
  return `${JSON.stringify(value, null, 2)}\n`;
}

/** test_probabilities.npy's bytes: float32 [count, 10]. */
export function testProbabilitiesFile(probabilities: Float32Array, count: number): Uint8Array {
  return encodeNpy({ dtype: 'float32', shape: [count, NUM_CLASSES], data: probabilities });
}
