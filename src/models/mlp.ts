import { NUM_CLASSES, PIXELS } from '../data/idx.ts';
import type { LayerSpec } from '../layers/index.ts';
import type { Architecture } from './sequential.ts';

export interface MlpShape {
  /** Units of the hidden ReLU layer. */
  hidden: number;
  /** Dropout after the hidden layer; 0 = none. */
  dropout: number;
  /** Weight initialisation of the dense layers. */
  init: 'he' | 'xavier';
}

/** The MLP as layers: input -> dense(hidden) -> ReLU -> dropout -> dense(10). */
export function mlpArchitecture(shape: MlpShape, inputSize = PIXELS): Architecture {
  const layers: LayerSpec[] = [{ type: 'dense', units: shape.hidden, init: shape.init }, { type: 'relu' }];
  if (shape.dropout > 0) layers.push({ type: 'dropout', rate: shape.dropout });
  layers.push({ type: 'dense', units: NUM_CLASSES, init: shape.init });
  return { inputShape: [inputSize], layers };
}

/** "784-128-10" style summary of a dense network's widths. */
export function describeWidths(architecture: Architecture): string {
  const widths = [architecture.inputShape.join('x')];
  for (const spec of architecture.layers) if (spec.type === 'dense') widths.push(String(spec.units));
  return widths.join('-');
}
