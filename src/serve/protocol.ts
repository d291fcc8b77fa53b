/**
 * The Open Inference Protocol (KServe v2, as spoken by Triton, TorchServe and ONNX Runtime's
 * servers) for image classifiers: the model metadata, the infer request checked value by value,
 * and the response. See https://kserve.github.io/website/docs/concepts/architecture/data-plane/v2-protocol
 * (the REST/JSON part; binary tensor extensions are not supported).
 */
import { IMAGE_SIZE, PIXELS } from '../data/idx.ts';
import type { ImageClassifier } from '../inference/classifier.ts';

/** The one input of every model: images in Fashion-MNIST's form. */
export const INPUT_NAME = 'images';
export const OUTPUT_NAMES = ['probabilities', 'classes'] as const;
type OutputName = (typeof OUTPUT_NAMES)[number];

/** A refusal of a client's request: the status (4xx) and one sentence for the JSON body's `error`. */
export class ClientError extends Error {
  constructor(
    readonly statusCode: 400 | 404 | 413 | 415,
    message: string,
  ) {
    super(message);
    this.name = 'ClientError';
  }
}

/**
 * The structure of an infer request, for Fastify's validation. The tensor's values are checked
 * in code (parseInferRequest): a schema per value would cost more than the forward pass.
 */
export const INFER_REQUEST_SCHEMA = {
  type: 'object',
  required: ['inputs'],
  properties: {
    id: { type: 'string', maxLength: 256 },
    parameters: { type: 'object' },
    inputs: {
      type: 'array',
      minItems: 1,
      maxItems: 1,
      items: {
        type: 'object',
        required: ['name', 'shape', 'datatype', 'data'],
        properties: {
          name: { type: 'string' },
          shape: { type: 'array', minItems: 1, maxItems: 8, items: { type: 'integer' } },
          datatype: { type: 'string', enum: ['UINT8', 'FP32'] },
          parameters: { type: 'object' },
          data: { type: 'array' },
        },
      },
    },
    outputs: {
      type: 'array',
      maxItems: 2,
      items: { type: 'object', required: ['name'], properties: { name: { type: 'string', enum: [...OUTPUT_NAMES] }, parameters: { type: 'object' } } },
    },
  },
} as const;

export interface InferRequest {
  id?: string;
  inputs: { name: string; shape: number[]; datatype: 'UINT8' | 'FP32'; data: unknown[] }[];
  outputs?: { name: OutputName }[];
}

/** The images of a request: pixels [count, 28, 28] bytes. */
export interface InferImages {
  pixels: Uint8Array;
  count: number;
  /** The outputs asked for (all when the request names none). */
  outputs: readonly OutputName[];
}

/**
 * The tensor's values as one flat list: `data` flat (as the protocol sends it), or nested
 * row-major exactly as the shape (as many clients send it). Null when nested otherwise.
 */
function flatten(data: unknown[], shape: readonly number[]): unknown[] | null {
  if (!Array.isArray(data[0])) return data;
  const flat: unknown[] = [];
  const walk = (values: unknown, level: number): boolean => {
    if (level === shape.length) {
      flat.push(values);
      return !Array.isArray(values);
    }
    if (!Array.isArray(values) || values.length !== shape[level]) return false;
    for (const value of values) if (!walk(value, level + 1)) return false;
    return true;
  };
  return walk(data, 0) ? flat : null;
}

/**
 * The images of a validated infer request; throws a ClientError for a wrong input name, shape
 * or value: UINT8 are whole numbers 0..255, FP32 numbers in [0, 1] (the scale the network
 * sees), rounded to the nearest of 256 levels as the model was trained on 8-bit images.
 */
export function parseInferRequest(request: InferRequest, maxImages: number): InferImages {
  const input = request.inputs[0];
  if (input.name !== INPUT_NAME) throw new ClientError(400, `unknown input "${input.name.slice(0, 50)}"; the model's input is "${INPUT_NAME}"`);
  const [count, height, width] = input.shape;
  if (input.shape.length !== 3 || height !== IMAGE_SIZE || width !== IMAGE_SIZE || !(count >= 1)) {
    throw new ClientError(400, `shape [${input.shape.join(', ')}] is not [N, ${IMAGE_SIZE}, ${IMAGE_SIZE}] with N at least 1`);
  }
  if (count > maxImages) throw new ClientError(413, `${count} images in one request; this server takes at most ${maxImages}`);
  const values = flatten(input.data, input.shape);
  if (values === null) throw new ClientError(400, `data is nested, but not as the shape [${input.shape.join(', ')}]`);
  if (values.length !== count * PIXELS) throw new ClientError(400, `data holds ${values.length} values; shape [${input.shape.join(', ')}] needs ${count * PIXELS}`);
  const pixels = new Uint8Array(values.length);
  const uint8 = input.datatype === 'UINT8';
  for (let i = 0; i < values.length; i++) {
    const value = values[i];
    if (typeof value !== 'number') throw new ClientError(400, `data[${i}] is ${JSON.stringify(value)?.slice(0, 40)}, not a number`);
    if (uint8 ? !(Number.isInteger(value) && value >= 0 && value <= 255) : !(value >= 0 && value <= 1)) {
      throw new ClientError(400, `data[${i}] is ${value}; ${input.datatype} pixels are ${uint8 ? 'whole numbers from 0 to 255' : 'numbers from 0 to 1'}`);
    }
    pixels[i] = uint8 ? value : Math.round(value * 255);
  }
  return { pixels, count, outputs: request.outputs ? [...new Set(request.outputs.map((output) => output.name))] : OUTPUT_NAMES };
}

/** The infer response: the probabilities [N, classes] and the predicted class names [N], as asked. */
export function inferResponse(classifier: ImageClassifier, probabilities: Float32Array, images: InferImages, id?: string): object {
  const classes = classifier.classNames.length;
  const outputs: object[] = [];
  for (const name of images.outputs) {
    if (name === 'probabilities') {
      outputs.push({ name, datatype: 'FP32', shape: [images.count, classes], data: Array.from(probabilities) });
    } else {
      const predicted = Array.from({ length: images.count }, (_, i) => {
        let best = 0;
        for (let c = 1; c < classes; c++) if (probabilities[i * classes + c] > probabilities[i * classes + best]) best = c;
        return classifier.classNames[best];
      });
      outputs.push({ name, datatype: 'BYTES', shape: [images.count], data: predicted });
    }
  }
  return { model_name: classifier.name, ...(id === undefined ? {} : { id }), outputs };
}

/**
 * The model metadata: its input and outputs with datatypes and shapes (-1: any batch size). The
 * input is declared UINT8 (pixels 0..255, a light garment on black); FP32 in [0, 1] is accepted
 * too, as the parameters say.
 */
export function modelMetadata(classifier: ImageClassifier): object {
  return {
    name: classifier.name,
    platform: `fmnist-${classifier.kind}`,
    parameters: { runtime: classifier.runtime, classes: classifier.classNames, input_datatypes: ['UINT8', 'FP32'] },
    inputs: [{ name: INPUT_NAME, datatype: 'UINT8', shape: [-1, IMAGE_SIZE, IMAGE_SIZE] }],
    outputs: [
      { name: 'probabilities', datatype: 'FP32', shape: [-1, classifier.classNames.length] },
      { name: 'classes', datatype: 'BYTES', shape: [-1] },
    ],
  };
}
