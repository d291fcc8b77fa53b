/**
 * ONNX export of a saved model: one graph from 28x28 images to class probabilities, whatever
 * the model's input transform, so another runtime (ONNX Runtime, a phone app, a C++ service)
 * needs nothing of this project to use it.
 *
 * Every graph takes `images` float32 [N, 1, 28, 28] (pixel bytes / 255: 0 the background, 1 the
 * brightest garment pixel) and gives `probabilities` float32 [N, 10]. Our layers are channels
 * last (NHWC) and ONNX's are channels first (NCHW); the weights are converted here:
 *   conv2d  weight [k, k, in, out] -> Conv's W [out, in, k, k], "same" padding (k - 1) / 2
 *   dense   weight [in, units] is Gemm's B as it is (transB = 0); bias is its C
 *   flatten of [H, W, C]: ONNX's Flatten of [N, C, H, W] orders the features (c, y, x) where ours
 *           are (y, x, c), so the next dense layer's rows are permuted to match
 *   batchnorm  BatchNormalization over channel axis 1 with the running statistics
 *   dropout    nothing (identity at inference)
 * A cnn-features model is the chain its input transform describes: the extractor CNN up to its
 * feature layer (with flipAverage, on the images and their mirror images, the two averaged),
 * (x - mean) * (1 / std) per feature, then the MLP.
 * The protobuf is written with ONNX's own definitions compiled for protobufjs (onnx-proto).
 */
import onnxProto from 'onnx-proto';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { IMAGE_SIZE, NUM_CLASSES, PIXELS } from '../data/idx.ts';
import { UserError } from '../errors.ts';
import { jsKernels } from '../kernels/index.ts';
import type { Layer } from '../layers/index.ts';
import type { ModelDescription } from '../models/model-file.ts';
import type { Sequential } from '../models/sequential.ts';
import { RunFolder, type ModelKind } from '../runs/run-folder.ts';
import { VERSION } from '../version.ts';

const { onnx } = onnxProto;
type NodeProto = onnxProto.onnx.INodeProto;
type TensorProto = onnxProto.onnx.ITensorProto;
type AttributeProto = onnxProto.onnx.IAttributeProto;

/** The opset the graphs use: every op they need is standard there (Softmax over one axis since 13). */
export const ONNX_OPSET = 17;
/** IR version 8 (ONNX 1.10), the one onnx-proto's definitions describe; opset 17 needs at least 8. */
const IR_VERSION = 8;
export const ONNX_INPUT = 'images';
export const ONNX_OUTPUT = 'probabilities';

export interface OnnxModel {
  /** The serialised ModelProto, ready for a .onnx file or an InferenceSession. */
  bytes: Uint8Array;
  kind: ModelKind;
  classNames: string[];
  /** Op types of the graph's nodes, in order (for messages and tests). */
  ops: string[];
}

type AttributeValue = number | number[] | string;

/** The graph under construction: nodes in order, their weights as initializers. */
class GraphBuilder {
  readonly nodes: NodeProto[] = [];
  readonly initializers: TensorProto[] = [];

  /** A float32 initializer named `name` with the given dims; returns its name. */
  weight(name: string, dims: readonly number[], data: Float32Array): string {
    const raw = new Uint8Array(data.buffer, data.byteOffset, data.byteLength).slice();
    this.initializers.push({ name, dims: [...dims], dataType: onnx.TensorProto.DataType.FLOAT, rawData: raw });
    return name;
  }

  /** An int64 initializer (shapes, axes, slice bounds); returns its name. */
  integers(name: string, values: readonly number[]): string {
    const raw = new Uint8Array(BigInt64Array.from(values, (v) => BigInt(v)).buffer);
    this.initializers.push({ name, dims: [values.length], dataType: onnx.TensorProto.DataType.INT64, rawData: raw });
    return name;
  }

  /** Appends a node whose one output is `output`; returns that name for the next node. */
  node(opType: string, inputs: string[], output: string, attributes: Record<string, AttributeValue> = {}): string {
    this.nodes.push({ opType, name: output, input: inputs, output: [output], attribute: Object.entries(attributes).map(([name, value]) => attribute(name, value)) });
    return output;
  }
}

function attribute(name: string, value: AttributeValue): AttributeProto {
  const type = onnx.AttributeProto.AttributeType;
  if (typeof value === 'string') return { name, type: type.STRING, s: new TextEncoder().encode(value) };
  if (Array.isArray(value)) return { name, type: type.INTS, ints: value };
  return Number.isInteger(value) ? { name, type: type.INT, i: value } : { name, type: type.FLOAT, f: value };
}

/** Conv's weight layout: ours [k, k, in, out] (taps, then channels) to ONNX's [out, in, k, k]. */
export function convWeightToOihw(weight: Float32Array, kernelSize: number, inChannels: number, outChannels: number): Float32Array {
  const k = kernelSize;
  const result = new Float32Array(weight.length);
  for (let ky = 0; ky < k; ky++) {
    for (let kx = 0; kx < k; kx++) {
      for (let i = 0; i < inChannels; i++) {
        for (let o = 0; o < outChannels; o++) {
          result[((o * inChannels + i) * k + ky) * k + kx] = weight[((ky * k + kx) * inChannels + i) * outChannels + o];
        }
      }
    }
  }
  return result;
}

/**
 * A dense weight [H·W·C, units] whose rows follow our flatten of [H, W, C] (row (y·W + x)·C + c),
 * reordered for a flatten of [C, H, W] (row c·H·W + y·W + x), as ONNX's and PyTorch's do.
 */
export function denseRowsToChannelsFirst(weight: Float32Array, image: readonly number[], units: number): Float32Array {
  const [height, width, channels] = image;
  const result = new Float32Array(weight.length);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      for (let c = 0; c < channels; c++) {
        const ours = ((y * width + x) * channels + c) * units;
        const theirs = (c * height * width + y * width + x) * units;
        result.set(weight.subarray(ours, ours + units), theirs);
      }
    }
  }
  return result;
}

/**
 * Emits layers 0 .. lastLayer of `model` onto `input` (NCHW images or [N, F] rows, as the model's
 * first layer expects). Initializers are named `<prefix>layers.<i>.<name>`, as in the weights file.
 */
function emitLayers(graph: GraphBuilder, model: Sequential, prefix: string, input: string, lastLayer: number): string {
  // The model lives on the reference kernels (loadForExport), whose tensors are the host's Float32Arrays.
  const value = (index: number, name: string) => model.parameter(index, name) as Float32Array;
  /** Set after flattening a [H, W, C] image, until the dense layer that consumes its features. */
  let flattenedImage: readonly number[] | null = null;
  let current = input;
  for (let index = 0; index <= lastLayer; index++) {
    const layer: Layer = model.layers[index];
    const spec = layer.spec;
    const name = (what: string) => `${prefix}layers.${index}.${what}`;
    const output = `${prefix}layers.${index}.out`;
    switch (spec.type) {
      case 'conv2d': {
        const [, , inChannels] = layer.inputShape;
        const k = spec.kernelSize ?? 3;
        const pad = (k - 1) / 2;
        const weight = graph.weight(name('weight'), [spec.filters, inChannels, k, k], convWeightToOihw(value(index, 'weight'), k, inChannels, spec.filters));
        const bias = graph.weight(name('bias'), [spec.filters], value(index, 'bias'));
        current = graph.node('Conv', [current, weight, bias], output, { kernel_shape: [k, k], pads: [pad, pad, pad, pad], strides: [1, 1] });
        break;
      }
      case 'maxpool2d':
        // ceil_mode 0: an odd size drops its last row and column, as ours does (7 -> 3).
        current = graph.node('MaxPool', [current], output, { kernel_shape: [2, 2], strides: [2, 2] });
        break;
      case 'flatten':
        if (layer.inputShape.length === 3 && layer.inputShape[2] > 1) flattenedImage = layer.inputShape;
        current = graph.node('Flatten', [current], output, { axis: 1 });
        break;
      case 'dense': {
        const [inputs] = layer.inputShape;
        let weight = value(index, 'weight');
        if (flattenedImage) weight = denseRowsToChannelsFirst(weight, flattenedImage, spec.units);
        flattenedImage = null;
        const b = graph.weight(name('weight'), [inputs, spec.units], weight);
        const c = graph.weight(name('bias'), [spec.units], value(index, 'bias'));
        current = graph.node('Gemm', [current, b, c], output);
        break;
      }
      case 'batchnorm': {
        if (flattenedImage) throw new UserError(`Layer ${index}: batch normalisation of flattened image features cannot be exported; flatten must be followed by a dense layer.`);
        const channels = layer.inputShape[layer.inputShape.length - 1];
        const inputs = ['gamma', 'beta', 'runningMean', 'runningVar'].map((what) => graph.weight(name(what), [channels], value(index, what)));
        current = graph.node('BatchNormalization', [current, ...inputs], output, { epsilon: spec.epsilon ?? 1e-5 });
        break;
      }
      case 'relu':
        current = graph.node('Relu', [current], output);
        break;
      case 'dropout':
        break;
    }
  }
  if (flattenedImage) throw new UserError(`The layers up to ${lastLayer} end with flattened image features, which cannot be exported in our order.`);
  return current;
}

/** Turns `images` ([N, 1, 28, 28]; the graph's input unless given) into what a model's first layer takes: the images or rows of 784. */
function emitPixelInput(graph: GraphBuilder, model: Sequential, description: ModelDescription, prefix: string, images = ONNX_INPUT): string {
  const shape = model.architecture.inputShape.join(',');
  let current = images;
  if (description.input.type === 'pixels' && Math.abs(description.input.scale * 255 - 1) > 1e-9) {
    // The graph's images are bytes / 255; a model trained on bytes · scale gets them rescaled.
    const factor = graph.weight(`${prefix}input.scale`, [], Float32Array.of(description.input.scale * 255));
    current = graph.node('Mul', [current, factor], `${prefix}input.scaled`);
  }
  if (shape === `${PIXELS}`) return graph.node('Flatten', [current], `${prefix}input.flat`, { axis: 1 });
  if (shape === `${IMAGE_SIZE},${IMAGE_SIZE},1`) return current;
  throw new UserError(`A model whose input is [${shape}] cannot be exported; the exporter knows pixel models of [784] or [28, 28, 1].`);
}

/** The images followed by their mirror images (width reversed): one batch of 2N. */
function emitMirroredBatch(graph: GraphBuilder, prefix: string): string {
  const bounds = [
    graph.integers(`${prefix}starts`, [IMAGE_SIZE - 1]),
    graph.integers(`${prefix}ends`, [-IMAGE_SIZE - 1]),
    graph.integers(`${prefix}axes`, [3]),
    graph.integers(`${prefix}steps`, [-1]),
  ];
  const mirrored = graph.node('Slice', [ONNX_INPUT, ...bounds], `${prefix}mirrored`);
  return graph.node('Concat', [ONNX_INPUT, mirrored], `${prefix}both`, { axis: 0 });
}

/** The model saved in `dir` with its weights, on the plain TypeScript kernels (only its layers' shapes and parameters are used). */
function loadForExport(dir: string): { model: Sequential; description: ModelDescription } {
  return new RunFolder(dir).loadModel(jsKernels);
}

/** config.json of a run folder as text, or null where there is none (a model copied without it). */
function trainingConfig(dir: string): string | null {
  const folder = new RunFolder(dir);
  return folder.state() === 'new' ? null : JSON.stringify(folder.readConfig());
}

/**
 * The model saved in `dir` (model.json and model.safetensors, any kind) as an ONNX model: one
 * graph from `images` to `probabilities`, the class names, producer and training configuration
 * in its metadata.
 */
export function exportOnnx(dir: string): OnnxModel {
  if (!existsSync(dir)) throw new UserError(`${dir} does not exist; pass the folder of a trained model (fmnist train, a pipeline's mlp/, cnn/ or cnn-features-mlp/).`);
  const { model, description } = loadForExport(dir);
  const kind = description.kind as ModelKind;
  const graph = new GraphBuilder();
  const metadata: Record<string, string> = { kind, class_names: JSON.stringify(description.classNames) };
  const config = trainingConfig(dir);
  if (config) metadata.training_config = config;

  let logits: string;
  const input = description.input;
  if (input.type === 'pixels' && description.testTimeFlip) {
    // Test-time flipping: the images and their mirror images run as one batch of 2N; the two
    // halves' probabilities are averaged below.
    logits = emitLayers(graph, model, '', emitPixelInput(graph, model, description, '', emitMirroredBatch(graph, 'flip.')), model.layers.length - 1);
  } else if (input.type === 'pixels') {
    logits = emitLayers(graph, model, '', emitPixelInput(graph, model, description, ''), model.layers.length - 1);
  } else {
    const extractorDir = resolve(dir, input.extractor);
    const extractor = loadForExport(extractorDir);
    const size = input.mean.length;
    let features: string;
    if (input.flipAverage) {
      // Each image's features are the mean of its own and its mirror image's: the 2N images'
      // features [2N, F] as [2, N, F], averaged over the first axis.
      const images = emitMirroredBatch(graph, 'cnn.flip.');
      const both = emitLayers(graph, extractor.model, 'cnn.', emitPixelInput(graph, extractor.model, extractor.description, 'cnn.', images), input.featureLayer);
      const halves = graph.node('Reshape', [both, graph.integers('cnn.flip.halves', [2, -1, size])], 'cnn.flip.halves.out');
      features = graph.node('ReduceMean', [halves], 'cnn.flip.features', { axes: [0], keepdims: 0 });
    } else {
      features = emitLayers(graph, extractor.model, 'cnn.', emitPixelInput(graph, extractor.model, extractor.description, 'cnn.'), input.featureLayer);
    }
    // (x - mean) · (1 / std) in float32, as featureExamples computes the MLP's input.
    const mean = graph.weight('features.mean', [size], Float32Array.from(input.mean));
    const scale = graph.weight('features.inverse_std', [size], Float32Array.from(input.std, (s) => 1 / s));
    const centred = graph.node('Sub', [features, mean], 'features.centred');
    const standardised = graph.node('Mul', [centred, scale], 'features.standardised');
    logits = emitLayers(graph, model, 'mlp.', standardised, model.layers.length - 1);
    const extractorConfig = trainingConfig(extractorDir);
    if (extractorConfig) metadata.extractor_training_config = extractorConfig;
  }
  if (input.type === 'pixels' && description.testTimeFlip) {
    const pairs = graph.node('Softmax', [logits], 'flip.probabilities', { axis: 1 });
    const halves = graph.node('Reshape', [pairs, graph.integers('flip.halves', [2, -1, NUM_CLASSES])], 'flip.halves.out');
    graph.node('ReduceMean', [halves], ONNX_OUTPUT, { axes: [0], keepdims: 0 });
  } else {
    graph.node('Softmax', [logits], ONNX_OUTPUT, { axis: 1 });
  }

  const tensorType = (name: string, dims: (number | string)[]) => ({
    name,
    type: {
      tensorType: {
        elemType: onnx.TensorProto.DataType.FLOAT,
        shape: { dim: dims.map((d) => (typeof d === 'string' ? { dimParam: d } : { dimValue: d })) },
      },
    },
  });
  const proto = onnx.ModelProto.create({
    irVersion: IR_VERSION,
    opsetImport: [{ domain: '', version: ONNX_OPSET }],
    producerName: 'fashion-mnist-ts',
    producerVersion: VERSION,
    docString: `Fashion-MNIST ${kind}: images float32 [N, 1, 28, 28], pixel bytes / 255 (light garment on a dark background), to probabilities [N, ${NUM_CLASSES}] over class_names.`,
    graph: {
      name: `fashion-mnist-${kind}`,
      node: graph.nodes,
      initializer: graph.initializers,
      input: [tensorType(ONNX_INPUT, ['N', 1, IMAGE_SIZE, IMAGE_SIZE])],
      output: [tensorType(ONNX_OUTPUT, ['N', NUM_CLASSES])],
    },
    metadataProps: Object.entries(metadata).map(([key, value]) => ({ key, value })),
  });
  // protobufjs hands back a Node Buffer; a plain view of it is what the type promises.
  const encoded = onnx.ModelProto.encode(proto).finish();
  const bytes = new Uint8Array(encoded.buffer, encoded.byteOffset, encoded.byteLength);
  return { bytes, kind, classNames: description.classNames, ops: graph.nodes.map((n) => n.opType!) };
}
