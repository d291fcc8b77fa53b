import { pixelExamples } from '../data/dataset.ts';
import { NUM_CLASSES, PIXELS } from '../data/idx.ts';
import { loadKernels, type Kernels } from '../kernels/index.ts';
import type { LayerSpec } from '../layers/index.ts';
import type { Architecture } from '../models/sequential.ts';
import type { ProgressEvent } from '../training/fit.ts';
import { VERSION } from '../version.ts';
import { DEFAULT_MLP_CONFIG, type MlpConfig } from './configs.ts';
import { checkRunFolder, trainModel, type ModelRunResult } from './train-model.ts';
import { forkStreams, prepareData, runConfigJson, type DataOptions } from './data-prep.ts';

export interface RunOptions extends DataOptions {
  /** Folder the run writes; created if needed. */
  outDir: string;
  /** Continue the run in outDir from its last checkpoint. */
  resume?: boolean;
  /** Kernels to use instead of loading the configured backend (a pipeline shares one). */
  kernels?: Kernels;
  onProgress?: (event: ProgressEvent) => void;
  /** One-line messages about what the run is doing. */
  log?: (message: string) => void;
}

/** The MLP as layers: input -> hidden (ReLU, dropout) -> 10. */
export function mlpArchitecture(config: Pick<MlpConfig, 'hidden' | 'dropout' | 'init'>, inputSize = PIXELS): Architecture {
  const layers: LayerSpec[] = [{ type: 'dense', units: config.hidden, init: config.init }, { type: 'relu' }];
  if (config.dropout > 0) layers.push({ type: 'dropout', rate: config.dropout });
  layers.push({ type: 'dense', units: NUM_CLASSES, init: config.init });
  return { inputShape: [inputSize], layers };
}

/** "784-128-10" style summary of a dense network's widths. */
export function describeWidths(architecture: Architecture): string {
  const widths = [architecture.inputShape.join('x')];
  for (const spec of architecture.layers) if (spec.type === 'dense') widths.push(String(spec.units));
  return widths.join('-');
}

/**
 * Trains the from-scratch MLP on Fashion-MNIST pixels and evaluates it on the test set; see
 * trainModel for the files it writes. The test images are loaded only after training.
 */
export async function trainMlp(overrides: Partial<MlpConfig>, options: RunOptions): Promise<ModelRunResult> {
  const config: MlpConfig = { ...DEFAULT_MLP_CONFIG, ...overrides };
  checkRunFolder(options.outDir, options.resume ?? false);
  const kernels = options.kernels ?? (await loadKernels(config.backend, { threads: config.threads ?? undefined, onFallback: options.log }));
  const streams = forkStreams(config.seed);
  const data = await prepareData(config, streams, options);
  options.log?.(`split: ${data.train.count} training, ${data.validation.count} validation images`);
  const architecture = mlpArchitecture(config);
  options.log?.(`model: MLP ${describeWidths(architecture)}`);
  return trainModel({
    kind: 'mlp',
    kernels,
    architecture,
    config,
    train: pixelExamples(data.train),
    validation: pixelExamples(data.validation),
    test: () => pixelExamples(data.test()),
    input: { type: 'pixels', scale: 1 / 255 },
    rngs: streams,
    outDir: options.outDir,
    configJson: runConfigJson('mlp', config, data, { version: VERSION }),
    onProgress: options.onProgress,
    log: options.log,
  }).result;
}
