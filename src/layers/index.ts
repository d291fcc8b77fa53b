import type { Kernels } from '../kernels/index.ts';
import { Dense } from './dense.ts';
import { Dropout } from './dropout.ts';
import type { Layer, LayerSpec, Shape } from './layer.ts';
import { Flatten, MaxPool2D } from './pooling.ts';
import { ReLU } from './relu.ts';
import { Conv2D } from './conv2d.ts';
import { BatchNorm } from './batchnorm.ts';

export { Dense } from './dense.ts';
export { Dropout } from './dropout.ts';
export { ReLU } from './relu.ts';
export { Conv2D } from './conv2d.ts';
export { BatchNorm } from './batchnorm.ts';
export { Flatten, MaxPool2D } from './pooling.ts';
export * from './layer.ts';

/** Builds a layer from its description; throws if the input shape does not fit it. */
export function buildLayer(spec: LayerSpec, inputShape: Shape, kernels: Kernels): Layer {
  switch (spec.type) {
    case 'dense':
      return new Dense(kernels, inputShape, spec.units, spec.init);
    case 'relu':
      return new ReLU(kernels, inputShape);
    case 'dropout':
      return new Dropout(kernels, inputShape, spec.rate);
    case 'conv2d':
      return new Conv2D(kernels, inputShape, spec.filters, spec.kernelSize);
    case 'maxpool2d':
      return new MaxPool2D(kernels, inputShape);
    case 'flatten':
      return new Flatten(kernels, inputShape);
    case 'batchnorm':
      return new BatchNorm(kernels, inputShape, spec.momentum, spec.epsilon);
  }
}
