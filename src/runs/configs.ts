import type { BackendName } from '../kernels/index.ts';
import type { ScheduleName } from '../training/schedules.ts';

/** How a model is trained; shared by every model kind. Saved in config.json so a run can be repeated. */
export interface TrainingConfig {
  /** Most epochs to train (early stopping may end sooner). */
  epochs: number;
  batchSize: number;
  /** Peak learning rate. */
  learningRate: number;
  optimizer: 'adam' | 'sgd';
  /** SGD only: momentum coefficient (0 = none). */
  momentum: number;
  /** SGD only: Nesterov momentum. */
  nesterov: boolean;
  /** L2 penalty on the weights (not the biases). */
  weightDecay: number;
  schedule: ScheduleName;
  /** `triangular` schedule: the share of the epochs spent rising to the peak learning rate. */
  warmup: number;
  /** Label smoothing ε of the training loss: targets (1 - ε)·onehot + ε / 10; 0 = none. */
  labelSmoothing: number;
  /**
   * Decay of an exponential moving average of the weights, which validation, the test and the
   * saved model use instead of the last weights; 0 = none.
   */
  emaDecay: number;
  /**
   * Lookahead (Zhang et al., 2019, as airbench uses it): every this many steps, and at the end of
   * every epoch, slow weights move toward the weights trained (by a share that grows over the
   * run) and training continues from them; 0 = none.
   */
  lookahead: number;
  /**
   * A snapshot ensemble in one model: what is validated, tested and kept over the last this many
   * epochs is the mean of the weights at the end of each of them so far (no cost at inference);
   * 0 or 1 = none.
   */
  averageEpochs: number;
  /** Epochs without a better validation accuracy before stopping; 0 = never stop early. */
  patience: number;
  /** Share of the 60,000 training images held out for validation (stratified). */
  validationFraction: number;
  /** Seeds every random choice: split, initialisation, shuffling, dropout, augmentation. */
  seed: number;
  /** Train on a stratified sample of this many training images (quick runs); null = all. */
  trainLimit: number | null;
  /** Kernel backend; `auto` = the fastest available. */
  backend: BackendName | 'auto';
  /** Threads for the wasm and native backends; null = every core. */
  threads: number | null;
}

/**
 * How a model on pixels sees its training images and is evaluated: augmentation and test-time
 * flipping. The MLP on a pipeline's features takes none of them (all off).
 */
export interface ImageConfig {
  /** Random shifts of up to this many pixels during training; 0 = none. */
  augmentShift: number;
  /** Random horizontal flips during training. */
  augmentFlip: boolean;
  /**
   * With augmentFlip: each training image is mirrored in every other epoch, from a random first
   * choice per image, instead of at random every time (airbench's alternating flips).
   */
  alternateFlip: boolean;
  /** Random erasing: the share of training images in which a random rectangle is overwritten with noise; 0 = none. */
  augmentErase: number;
  /** Evaluate (validation, test, and wherever the model is used) on each image and its mirror image, averaging the probabilities. */
  testFlip: boolean;
}

/** The MLP: input -> hidden ReLU layer -> 10. */
export interface MlpConfig extends TrainingConfig, ImageConfig {
  /** Units of the hidden ReLU layer. */
  hidden: number;
  /** Dropout rate after the hidden layer; 0 = none. */
  dropout: number;
  /** Weight initialisation of the dense layers. */
  init: 'he' | 'xavier';
}

/** The CNN feature extractor (see models/cnn.ts) and how it is trained. */
export interface CnnConfig extends TrainingConfig, ImageConfig {
  /** Filters of the five convolutions. */
  channels: number[];
  /** Size of the feature layer. */
  features: number;
  /** Dropout after the last pooling; 0 = none. */
  convDropout: number;
  /** Dropout after the feature layer; 0 = none. */
  featureDropout: number;
  /** Batch normalisation after each convolution and the feature layer. */
  batchNorm: boolean;
  /**
   * The first convolution's filters from the whitened 3x3 patches of the training split (each
   * eigenvector of their covariance, scaled by 1 / sqrt(eigenvalue + 5e-4), and its negative;
   * the filters beyond 18 keep their He draw), and the layer frozen.
   */
  whiten: boolean;
  /** Identity (Dirac) initialisation of convolutions 2 to 5: their first min(in, out) filters pass their input channel through. */
  diracInit: boolean;
  /** The learning rate of batch normalisation's shifts (beta) is this multiple of the others'. */
  batchNormBiasLr: number;
}

const TRAINING_DEFAULTS: TrainingConfig = {
  epochs: 30,
  batchSize: 64,
  learningRate: 0.001,
  optimizer: 'adam',
  momentum: 0.9,
  nesterov: false,
  weightDecay: 0,
  schedule: 'cosine',
  warmup: 0.2,
  labelSmoothing: 0,
  emaDecay: 0,
  lookahead: 0,
  averageEpochs: 0,
  patience: 5,
  validationFraction: 0.2,
  seed: 42,
  trainLimit: null,
  backend: 'auto',
  threads: null,
};

/** No augmentation, no test-time flipping. */
const PLAIN_IMAGES: ImageConfig = { augmentShift: 0, augmentFlip: false, alternateFlip: false, augmentErase: 0, testFlip: false };

/**
 * The MLP on pixels: 784-128-10, He initialisation, Adam from 0.0007 annealed by a cosine over 100
 * epochs (the best epoch's weights kept), batch 64, dropout 0.05, label smoothing 0.05, an
 * average of the weights (decay 0.99), horizontal flips in training and at test time: chosen on
 * the validation set by a search (see docs/results.md).
 */
export const DEFAULT_MLP_CONFIG: Readonly<MlpConfig> = {
  ...TRAINING_DEFAULTS,
  epochs: 100,
  learningRate: 0.0007,
  labelSmoothing: 0.05,
  emaDecay: 0.99,
  patience: 0,
  ...PLAIN_IMAGES,
  augmentFlip: true,
  testFlip: true,
  hidden: 128,
  dropout: 0.05,
  init: 'he',
};

/**
 * The CNN: batch normalisation, identity (Dirac) initialisation of convolutions 2 to 5, batch
 * 128, a triangular schedule peaking at 0.003 after a fifth of the 12 epochs, label smoothing
 * 0.1, an average of the weights (decay 0.999), shifts of up to 1 pixel and horizontal flips in
 * training, flips at test time, dropout only after the feature layer: the best validation
 * accuracy of the recipes tried within the pipeline's 10 minutes, each part's share measured by
 * leaving it out or adding it (see docs/results.md).
 */
export const DEFAULT_CNN_CONFIG: Readonly<CnnConfig> = {
  ...TRAINING_DEFAULTS,
  epochs: 12,
  batchSize: 128,
  learningRate: 0.003,
  schedule: 'triangular',
  warmup: 0.2,
  labelSmoothing: 0.1,
  emaDecay: 0.999,
  patience: 0,
  channels: [32, 32, 64, 64, 128],
  features: 256,
  convDropout: 0,
  featureDropout: 0.2,
  augmentShift: 1,
  augmentFlip: true,
  alternateFlip: false,
  augmentErase: 0,
  testFlip: true,
  batchNorm: true,
  whiten: false,
  diracInit: true,
  batchNormBiasLr: 1,
};

/** The MLP on the CNN's (standardised) features: Adam from 0.001, cosine over 20 epochs, patience 5, dropout 0.3; no images, so no augmentation. */
export const DEFAULT_FEATURES_MLP_CONFIG: Readonly<MlpConfig> = {
  ...TRAINING_DEFAULTS,
  ...PLAIN_IMAGES,
  epochs: 20,
  hidden: 128,
  dropout: 0.3,
  init: 'he',
};
