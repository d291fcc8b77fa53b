/**
 * fashion-mnist-ts: Fashion-MNIST classification with neural networks written from scratch.
 * Everything the `fmnist` CLI does is a typed function here; the building blocks below them
 * (layers, models, optimisers, kernels) are exported for people who assemble their own.
 *
 * @packageDocumentation
 */

// ---- Jobs: what the CLI commands run ----

/** Trains the MLP on pixels into a run folder and evaluates it on the test set (`fmnist train mlp`). */
export { trainMlp } from './runs/train.ts';
/** Trains the CNN the same way (`fmnist train cnn`). */
export { trainCnn } from './runs/train.ts';
/** Trains the MLP on a pipeline's saved CNN features. */
export { trainFeaturesMlp } from './runs/train.ts';
/** Options of a training run (folder, resume, data, kernels, progress) and what it returns. */
export type { RunOptions, ModelRunResult } from './runs/train.ts';
/** The main job (`fmnist pipeline`): MLP, CNN, features, MLP on features, each evaluated on the test set. */
export { runPipeline } from './runs/pipeline.ts';
export type { PipelineSummary } from './runs/pipeline.ts';
/**
 * The main job in pieces, for a notebook or a script that shows each step where it happens
 * (notebooks/fashion-mnist.ipynb): `split`, the images a run trains and validates on, drawn
 * before it trains; `saveFeatures`, a trained CNN's features as .npy for `trainFeaturesMlp`;
 * `writeSummary`, a pipeline's summary.json for `buildReport`; `learningCurves` and
 * `imageGrid`, the report's pictures one at a time. `runPipeline` and `buildReport` are made of
 * the same pieces.
 */
export { pieces } from './pieces.ts';
/** Evaluates a saved model of any kind on the test set (`fmnist evaluate`). */
export { evaluateSavedModel } from './runs/evaluate.ts';
/** Builds report.html and charts/ for a run, pipeline or search folder (`fmnist report`). */
export { buildReport } from './reports/report.ts';
/** A hyperparameter search (`fmnist search`): its settings, the search, the test figures of its best model, a worker joining a study (`fmnist search worker`). */
export { runSearch, evaluateBest, runSearchWorker } from './search/search.ts';
export type { SearchResult } from './search/search.ts';
export { searchSettings } from './search/settings.ts';
export type { SearchSettings } from './search/settings.ts';

// ---- Using trained models ----

/** A saved model (or a pipeline's three) as classifiers of 28x28 images, run by our engine or by ONNX Runtime. */
export { loadClassifiers } from './inference/classifier.ts';
export type { ImageClassifier } from './inference/classifier.ts';
export { loadOnnxClassifiers } from './export/onnx-runtime.ts';
/** People's images (RGBA pixels of any size) brought to Fashion-MNIST's form, as `fmnist predict` does. */
export { toFashionMnist } from './inference/preprocess.ts';
/** The inference server of `fmnist serve` (a Fastify app) over any classifiers. */
export { buildServer } from './serve/server.ts';
/** A saved model as an ONNX graph from images to probabilities (`fmnist export`). */
export { exportOnnx } from './export/onnx.ts';

// ---- Configuration ----

/** The default configurations (chosen on the validation split; see docs/results.md). */
export { DEFAULT_MLP_CONFIG, DEFAULT_CNN_CONFIG, DEFAULT_FEATURES_MLP_CONFIG } from './runs/configs.ts';
export type { MlpConfig, CnnConfig } from './runs/configs.ts';
/** Reads and writes a run folder's files (config, history, metrics, model, split) with their types. */
export { RunFolder } from './runs/run-folder.ts';

// ---- Data ----

/** The ten class names, in label order. */
export { CLASS_NAMES } from './data/manifest.ts';
/** Finds the four official files (a folder, the Debian package, the cache, or a download). */
export { locateData } from './data/locate.ts';
/** The official training (60,000) and test (10,000) images, checksum-verified. */
export { loadTrainingSet, loadTestSet } from './data/load.ts';
export type { LabelledImages } from './data/load.ts';

// ---- Building blocks ----

/**
 * The kernel backends (js reference, wasm, native; webgpu, on a GPU) behind one interface over
 * tensors that the host reads and writes through it (read, write), allocated and released.
 */
export { loadKernels } from './kernels/index.ts';
export type { Kernels, BackendName, Tensor } from './kernels/index.ts';
/** A stack of layers over one flat parameter buffer, and the architectures of the project's models. */
export { Sequential } from './models/sequential.ts';
export type { Architecture, SequentialOptions } from './models/sequential.ts';
export { mlpArchitecture } from './models/mlp.ts';
export { cnnArchitecture } from './models/cnn.ts';
/** The training loop (mini-batches, validation, early stopping, checkpoints) and the optimisers. */
export { fit } from './training/fit.ts';
export { Adam, Sgd } from './training/optimizers.ts';
/** Predictions, loss and accuracy of a model over examples; a confusion matrix and its per-class report. */
export { evaluate } from './evaluation/predict.ts';
export { confusionMatrix, classificationReport } from './evaluation/metrics.ts';
/** The one seeded random generator every random choice draws from. */
export { Rng } from './random/rng.ts';
/** A user's mistake (a bad flag, file or value): one sentence, no stack trace. */
export { UserError } from './errors.ts';
