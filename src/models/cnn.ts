import type { LayerSpec } from '../layers/index.ts';
import type { Architecture } from './sequential.ts';

export interface CnnShape {
  /** Filters of the five 3x3 convolutions. */
  channels: readonly number[];
  /** Units of the fully connected feature layer. */
  features: number;
  /** Dropout after the last pooling (before the feature layer); 0 = none. */
  convDropout: number;
  /** Dropout after the feature layer (before the head); 0 = none. */
  featureDropout: number;
  /** Batch normalisation after every convolution and after the feature layer (before each ReLU). */
  batchNorm?: boolean;
}

/**
 * The CNN feature extractor with its training head, for [28, 28, 1] images:
 * conv-ReLU, conv-ReLU, pool (28 -> 14), conv-ReLU, conv-ReLU, pool (14 -> 7), conv-ReLU,
 * pool (7 -> 3), dropout, flatten, dense(features)-ReLU = the features, dropout, dense(10).
 * Returns the architecture and the index of the layer whose output are the features.
 */
export function cnnArchitecture(shape: CnnShape): { architecture: Architecture; featureLayer: number } {
  if (shape.channels.length !== 5) throw new Error(`the CNN has 5 convolutions, got ${shape.channels.length} channel counts`);
  const [c1, c2, c3, c4, c5] = shape.channels;
  const norm: LayerSpec[] = shape.batchNorm ? [{ type: 'batchnorm' }] : [];
  const conv = (filters: number): LayerSpec[] => [{ type: 'conv2d', filters }, ...norm, { type: 'relu' }];
  const layers: LayerSpec[] = [
    ...conv(c1),
    ...conv(c2),
    { type: 'maxpool2d' },
    ...conv(c3),
    ...conv(c4),
    { type: 'maxpool2d' },
    ...conv(c5),
    { type: 'maxpool2d' },
  ];
  if (shape.convDropout > 0) layers.push({ type: 'dropout', rate: shape.convDropout });
  layers.push({ type: 'flatten' }, { type: 'dense', units: shape.features }, ...norm, { type: 'relu' });
  const featureLayer = layers.length - 1;
  if (shape.featureDropout > 0) layers.push({ type: 'dropout', rate: shape.featureDropout });
  layers.push({ type: 'dense', units: 10 });
  return { architecture: { inputShape: [28, 28, 1], layers }, featureLayer };
}
