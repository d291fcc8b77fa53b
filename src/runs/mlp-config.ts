import type { BackendName } from '../kernels/index.ts';
import type { ScheduleName } from '../training/schedules.ts';

/** Everything that defines an MLP run; saved as config.json so the run can be repeated. */
export interface MlpConfig {
  /** Units of the hidden ReLU layer. */
  hidden: number;
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
  /** Dropout rate after the hidden layer; 0 = none. */
  dropout: number;
  schedule: ScheduleName;
  /** Weight initialisation of the dense layers. */
  init: 'he' | 'xavier';
  /** Epochs without a better validation accuracy before stopping; 0 = never stop early. */
  patience: number;
  /** Share of the 60,000 training images held out for validation (stratified). */
  validationFraction: number;
  /** Seeds every random choice: split, initialisation, shuffling, dropout. */
  seed: number;
  /** Train on a stratified sample of this many training images (quick runs); null = all. */
  trainLimit: number | null;
  /** Kernel backend; `auto` = the fastest available. */
  backend: BackendName | 'auto';
  /** Threads for the wasm backend; null = every core. */
  threads: number | null;
}

/** The defaults: 784-128-10, chosen on the validation set (see README, "Results"). */
export const DEFAULT_MLP_CONFIG: Readonly<MlpConfig> = {
  hidden: 128,
  epochs: 30,
  batchSize: 64,
  learningRate: 0.001,
  optimizer: 'adam',
  momentum: 0.9,
  nesterov: false,
  weightDecay: 0,
  dropout: 0.2,
  schedule: 'cosine',
  init: 'he',
  patience: 5,
  validationFraction: 0.2,
  seed: 42,
  trainLimit: null,
  backend: 'auto',
  threads: null,
};
