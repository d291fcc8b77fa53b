/**
 * The messages between the page and its training worker. The worker holds the data and the
 * kernels; the page draws and asks.
 */
import type { DataFileKey } from '../src/data/manifest.ts';
import type { FileCheck, LabelledImages } from '../src/data/verify.ts';
import type { TestMetrics } from '../src/evaluation/metrics.ts';
import type { ModelDescription } from '../src/models/model-format.ts';
import type { Architecture } from '../src/models/sequential.ts';
import type { CnnConfig, MlpConfig } from '../src/runs/configs.ts';
import type { EpochRecord, LearningRateChange } from '../src/training/fit.ts';

/** Where the four files come from: the app's server (absolute addresses) or files a person picked. */
export type DataSource =
  | { type: 'server'; files: Record<DataFileKey, { name: string; url: string }> }
  | { type: 'files'; files: Record<DataFileKey, File> };

/** Where the page runs its models: the WebAssembly kernels (on threads where it may), or WebGPU where the browser gives an adapter. */
export type PageEngine = 'wasm' | 'webgpu';

/** What the page trains: the MLP or the CNN with its configuration (the CLI's, field for field; its backend is the page's engine). */
export type PageJob = { kind: 'mlp'; config: MlpConfig & { backend: PageEngine } } | { kind: 'cnn'; config: CnnConfig & { backend: PageEngine } };

/** A model as its two files' contents: model.json's description and model.safetensors' bytes. */
export interface ModelFiles {
  description: ModelDescription;
  weights: Uint8Array;
}

/** A run's files by name (run-files.ts's names), as a run folder holds them. */
export type RunFileMap = Map<string, Uint8Array>;

export type ToWorker =
  | { type: 'load-data'; source: DataSource; allowModified: boolean }
  /**
   * Train `job` on `threads` threads; `resume` continues from the last finished epoch of the job
   * stopped before. `watch`: send the weights now and then (see `weights`).
   */
  | { type: 'train'; job: PageJob; threads: number; resume: boolean; watch: boolean }
  | { type: 'stop' }
  /** The peak learning rate from the next step on. */
  | { type: 'set-learning-rate'; learningRate: number }
  /** Send the weights while training (or stop sending them). */
  | { type: 'watch'; watch: boolean };

export type FromWorker =
  | { type: 'data'; checks: FileCheck[]; trainingCount: number; test: LabelledImages }
  | { type: 'data-error'; message: string }
  | {
      type: 'started';
      kernels: string;
      trainCount: number;
      validationCount: number;
      epochsDone: number;
      history: EpochRecord[];
      /** The model's layers, so that the page can rebuild it from the weights it is sent. */
      architecture: Architecture;
    }
  | {
      type: 'progress';
      epoch: number;
      epochs: number;
      batch: number;
      batches: number;
      /** Running mean over the epoch so far. */
      loss: number;
      accuracy: number;
      /** Training images a second this epoch, from its fourth batch on (the first three warm up); null before. */
      imagesPerSecond: number | null;
      /** Seconds left at that speed, validation excluded; null before the speed is known. */
      etaSeconds: number | null;
    }
  | { type: 'epoch'; record: EpochRecord; improved: boolean; imagesPerSecond: number | null }
  /** A learning-rate change, applied from the step it names. */
  | { type: 'learning-rate'; change: LearningRateChange & { epoch: number } }
  /** The weights as they are after `step` steps (every few hundred steps while watched): [parameters], the model's layout. */
  | { type: 'weights'; epoch: number; step: number; values: Float32Array }
  /** Stopped on request: the epochs finished so far are kept, and the best weights among them where there are any. */
  | { type: 'stopped'; epochsDone: number; files: RunFileMap | null; history: EpochRecord[]; bestEpoch: number }
  | {
      type: 'done';
      history: EpochRecord[];
      bestEpoch: number;
      stoppedEarly: boolean;
      parameterCount: number;
      test: TestMetrics;
      /** [10000, 10]: the softmax of each test image. */
      probabilities: Float32Array;
      /** The run's files, as `fmnist train` writes them into its folder (config.json included). */
      files: RunFileMap;
      seconds: number;
    }
  | { type: 'error'; message: string };
