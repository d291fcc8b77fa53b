/**
 * fashion-mnist-ts: Fashion-MNIST classification with neural networks written from scratch.
 * Everything the `fmnist` CLI does is available here as typed functions.
 */
export { UserError, UsageError } from './errors.ts';
export { Rng, type RngState } from './random/rng.ts';

export { CLASS_NAMES, DATA_FILES, DEBIAN_DATA_DIR, OFFICIAL_BASE_URL } from './data/manifest.ts';
export { locateData, defaultCacheDir, type DataLocation, type DataOrigin, type LocateOptions } from './data/locate.ts';
export { downloadFashionMnist, type DownloadOptions } from './data/download.ts';
export { loadTestSet, loadTrainingSet, type FileCheck, type LabelledImages, type LoadOptions } from './data/load.ts';
export { parseIdxImages, parseIdxLabels, IMAGE_SIZE, NUM_CLASSES, PIXELS } from './data/idx.ts';
export { stratifiedSample, stratifiedSplit, type TrainValidationSplit } from './data/split.ts';
export { pixelExamples, type Examples } from './data/dataset.ts';

export {
  BACKEND_NAMES,
  jsKernels,
  loadKernels,
  type AdamHyper,
  type BackendName,
  type KernelOptions,
  type Kernels,
  type SgdHyper,
} from './kernels/index.ts';
export { createWasmKernels, type WasmKernels, type WasmKernelsOptions } from './kernels/wasm/backend.ts';
export { WORKER_BODY, type SpawnWorker, type WorkerInit } from './kernels/wasm/pool.ts';
export { Dense, Dropout, ReLU, buildLayer, type Layer, type LayerSpec, type Shape } from './layers/index.ts';
export { SoftmaxCrossEntropy } from './layers/softmax-cross-entropy.ts';
export { Sequential, type Architecture, type ParameterTensor } from './models/sequential.ts';

export { Adam, Sgd, type AdamOptions, type Optimizer, type SgdOptions } from './training/optimizers.ts';
export { learningRateAt, type Schedule, type ScheduleName } from './training/schedules.ts';
export { fit, type EpochRecord, type FitOptions, type FitResult, type ProgressEvent } from './training/fit.ts';

export { evaluate, type Evaluation } from './evaluation/predict.ts';
export {
  classificationReport,
  confusionMatrix,
  formatClassificationReport,
  formatConfusionMatrix,
  type ClassificationReport,
  type ConfusionMatrix,
} from './evaluation/metrics.ts';

export { loadModel, saveModel, type ModelDescription } from './io/model-file.ts';
export { decodeSafetensors, encodeSafetensors } from './io/safetensors.ts';

export {
  DEFAULT_CNN_CONFIG,
  DEFAULT_FEATURES_MLP_CONFIG,
  DEFAULT_MLP_CONFIG,
  type CnnConfig,
  type MlpConfig,
  type TrainingConfig,
} from './runs/configs.ts';
export { trainMlp, mlpArchitecture, type RunOptions } from './runs/train-mlp.ts';
export { trainCnn } from './runs/train-cnn.ts';
export { extractFeatures, saveFeatures, trainFeaturesMlp } from './runs/features.ts';
export { runPipeline, pipelineConfig, formatSummary, type PipelineConfig, type PipelineSummary } from './runs/pipeline.ts';
export { trainModel, testMetrics, type ModelKind, type ModelRunResult, type TestMetrics } from './runs/train-model.ts';
export { cnnArchitecture, type CnnShape } from './models/cnn.ts';
export { loadNpy, saveNpy, type NpyArray } from './io/npy.ts';
export { evaluateSavedModel, type SavedEvaluation } from './runs/evaluate-saved.ts';
export { summarizeData, type DataSummary } from './runs/data-summary.ts';
export { pca, type Pca } from './evaluation/pca.ts';
export { buildReport, type ReportOptions, type ReportResult } from './reports/report.ts';
export {
  runSearch,
  searchSettings,
  evaluateBest,
  rungEpochs,
  type SearchSettings,
  type SearchOptions,
  type SearchResult,
  type TrialSummary,
  type FinalEvaluation,
} from './search/search.ts';
export { DEFAULT_SPACES, validateSpace, type SearchSpace, type ParameterSpec, type SearchModel } from './search/space.ts';
