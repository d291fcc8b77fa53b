/**
 * The Open Inference Protocol (KServe v2, as spoken by Triton, TorchServe and ONNX Runtime's
 * servers) for image classifiers: an infer request checked value by value, whether its tensors
 * come as JSON or as binary data after the JSON (the binary tensor data extension), and the
 * response in either form; the classification extension; the model metadata and configuration.
 * The same requests and answers serve HTTP (server.ts) and gRPC (grpc.ts).
 * See https://kserve.github.io/website/docs/concepts/architecture/data-plane/v2-protocol.
 */
import { IMAGE_SIZE, PIXELS } from '../data/idx.ts';
import type { ImageClassifier } from '../inference/classifier.ts';

/** The one input of every model: images in Fashion-MNIST's form. */
export const INPUT_NAME = 'images';
export const OUTPUT_NAMES = ['probabilities', 'classes'] as const;
export type OutputName = (typeof OUTPUT_NAMES)[number];
/** The input datatypes taken: pixels 0..255, or floats in [0, 1]. */
const INPUT_DATATYPES = ['UINT8', 'FP32'] as const;
type InputDatatype = (typeof INPUT_DATATYPES)[number];

/** The extensions this server speaks (GET /v2 names them). */
export const EXTENSIONS = ['binary_tensor_data', 'classification', 'model_repository', 'statistics', 'model_configuration'] as const;

/** The HTTP header that gives the length of the JSON before binary tensor data. */
export const HEADER_LENGTH = 'inference-header-content-length';

/** A refusal of a client's request: the status (4xx, or 503 while a model is not ready) and one sentence for the JSON body's `error`. */
export class ClientError extends Error {
  constructor(
    readonly statusCode: 400 | 404 | 413 | 415 | 503,
    message: string,
  ) {
    super(message);
    this.name = 'ClientError';
  }
}

/** An output asked for: as JSON or as binary data, as the tensor or as the top `classification` classes (0: the tensor). */
export interface RequestedOutput {
  name: OutputName;
  binary: boolean;
  classification: number;
}

/** The images of a request, pixels [count, 28, 28] bytes, and what it asks back. */
export interface InferImages {
  pixels: Uint8Array;
  count: number;
  outputs: RequestedOutput[];
  id?: string;
}

/** The JSON part of a request, once its structure is checked. */
interface InferHeader {
  id?: string;
  parameters?: Record<string, unknown>;
  inputs: { name: string; shape: number[]; datatype: string; parameters?: Record<string, unknown>; data?: unknown[] }[];
  outputs?: { name: string; parameters?: Record<string, unknown> }[];
}

const bad = (message: string) => new ClientError(400, message);
const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);
const describe = (value: unknown) => JSON.stringify(value)?.slice(0, 40) ?? String(value);

/** The request's structure, checked field by field (a value per pixel is checked apart, in parseImages). */
function checkHeader(value: unknown): InferHeader {
  if (!isObject(value)) throw bad('the request is not a JSON object');
  if (value.id !== undefined && (typeof value.id !== 'string' || value.id.length > 256)) throw bad('id must be a string of at most 256 characters');
  if (value.parameters !== undefined && !isObject(value.parameters)) throw bad('parameters must be an object');
  if (!Array.isArray(value.inputs)) throw bad('the request needs inputs: a list of one tensor');
  if (value.inputs.length !== 1) throw bad(`the request has ${value.inputs.length} inputs; the model takes one, "${INPUT_NAME}"`);
  const input = value.inputs[0];
  if (!isObject(input)) throw bad('the input is not an object');
  if (typeof input.name !== 'string') throw bad('the input needs a name (a string)');
  if (!Array.isArray(input.shape) || input.shape.length < 1 || input.shape.length > 8 || !input.shape.every((d) => Number.isInteger(d))) throw bad('the input needs a shape: a list of 1 to 8 whole numbers');
  if (typeof input.datatype !== 'string') throw bad('the input needs a datatype (a string)');
  if (input.parameters !== undefined && !isObject(input.parameters)) throw bad('the input\'s parameters must be an object');
  const binary = isObject(input.parameters) && input.parameters.binary_data_size !== undefined;
  if (binary && input.data !== undefined) throw bad('the input has both data and binary_data_size; give one');
  if (!binary && !Array.isArray(input.data)) throw bad('the input needs data: a list of values (or binary_data_size and the bytes after the JSON)');
  if (value.outputs !== undefined) {
    if (!Array.isArray(value.outputs) || value.outputs.length > OUTPUT_NAMES.length) throw bad(`outputs must be a list of at most ${OUTPUT_NAMES.length}`);
    for (const output of value.outputs) {
      if (!isObject(output) || typeof output.name !== 'string') throw bad('each output asked for needs a name');
      if (!(OUTPUT_NAMES as readonly string[]).includes(output.name)) throw bad(`unknown output "${output.name.slice(0, 50)}"; the outputs are ${OUTPUT_NAMES.join(' and ')}`);
      if (output.parameters !== undefined && !isObject(output.parameters)) throw bad('an output\'s parameters must be an object');
    }
  }
  return value as unknown as InferHeader;
}

/**
 * A request's body as JSON and binary tensor data: with the header Inference-Header-Content-Length
 * (its value `headerLength`), the first that many bytes are the JSON and the rest the tensors'
 * bytes; without it, the whole body is JSON.
 */
function splitBody(body: Buffer, headerLength: string | undefined): { header: unknown; binary: Buffer } {
  let jsonLength = body.length;
  if (headerLength !== undefined) {
    if (!/^\d{1,12}$/.test(headerLength)) throw bad(`Inference-Header-Content-Length is "${headerLength.slice(0, 20)}", not a length`);
    jsonLength = Number(headerLength);
    if (jsonLength > body.length) throw bad(`Inference-Header-Content-Length is ${jsonLength}, but the body holds ${body.length} bytes`);
  }
  let header: unknown;
  try {
    header = JSON.parse(body.subarray(0, jsonLength).toString('utf8'));
  } catch (error) {
    throw bad(`the ${headerLength === undefined ? 'body' : 'JSON header'} is not valid JSON (${error instanceof Error ? error.message.slice(0, 120) : 'unreadable'})`);
  }
  return { header, binary: body.subarray(jsonLength) };
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

/** A pixel from a value, as the datatype gives it: UINT8 whole numbers 0..255, FP32 numbers in [0, 1] rounded to the nearest of 256 levels (the model was trained on 8-bit images). */
function pixel(value: unknown, datatype: InputDatatype, at: number): number {
  const uint8 = datatype === 'UINT8';
  if (typeof value !== 'number') throw bad(`data[${at}] is ${describe(value)}, not a number`);
  if (uint8 ? !(Number.isInteger(value) && value >= 0 && value <= 255) : !(value >= 0 && value <= 1)) {
    throw bad(`data[${at}] is ${value}; ${datatype} pixels are ${uint8 ? 'whole numbers from 0 to 255' : 'numbers from 0 to 1'}`);
  }
  return uint8 ? value : Math.round(value * 255);
}

/** The images of a checked input tensor; `raw` its bytes where they came as binary data (or gRPC's raw contents). */
function parseImages(input: InferHeader['inputs'][number], raw: Uint8Array | null, maxImages: number): { pixels: Uint8Array; count: number } {
  if (input.name !== INPUT_NAME) throw bad(`unknown input "${input.name.slice(0, 50)}"; the model's input is "${INPUT_NAME}"`);
  if (!(INPUT_DATATYPES as readonly string[]).includes(input.datatype)) throw bad(`datatype ${input.datatype.slice(0, 20)} is not taken; images are ${INPUT_DATATYPES.join(' or ')}`);
  const datatype = input.datatype as InputDatatype;
  const [count, height, width] = input.shape;
  if (input.shape.length !== 3 || height !== IMAGE_SIZE || width !== IMAGE_SIZE || !(count >= 1)) {
    throw bad(`shape [${input.shape.join(', ')}] is not [N, ${IMAGE_SIZE}, ${IMAGE_SIZE}] with N at least 1`);
  }
  if (count > maxImages) throw new ClientError(413, `${count} images in one request; this server takes at most ${maxImages}`);
  const values = count * PIXELS;
  const pixels = new Uint8Array(values);
  if (raw !== null) {
    const size = datatype === 'UINT8' ? values : values * 4;
    if (raw.length !== size) throw bad(`the input's binary data holds ${raw.length} bytes; ${values} ${datatype} values of shape [${input.shape.join(', ')}] take ${size}`);
    if (datatype === 'UINT8') pixels.set(raw);
    else {
      const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
      for (let i = 0; i < values; i++) pixels[i] = pixel(view.getFloat32(i * 4, true), datatype, i);
    }
    return { pixels, count };
  }
  const flat = flatten(input.data!, input.shape);
  if (flat === null) throw bad(`data is nested, but not as the shape [${input.shape.join(', ')}]`);
  if (flat.length !== values) throw bad(`data holds ${flat.length} values; shape [${input.shape.join(', ')}] needs ${values}`);
  for (let i = 0; i < values; i++) pixels[i] = pixel(flat[i], datatype, i);
  return { pixels, count };
}

/** The outputs asked for: every output where none is named; binary where asked per output or for all (binary_data_output). */
function requestedOutputs(header: Pick<InferHeader, 'outputs' | 'parameters'>, binaryByDefault: boolean): RequestedOutput[] {
  const allBinary = header.parameters?.binary_data_output === true || binaryByDefault;
  const asked = header.outputs ?? OUTPUT_NAMES.map((name) => ({ name, parameters: undefined }));
  const seen = new Set<string>();
  return asked.flatMap((output) => {
    if (seen.has(output.name)) return [];
    seen.add(output.name);
    const binary = output.parameters?.binary_data;
    if (binary !== undefined && typeof binary !== 'boolean') throw bad('binary_data must be true or false');
    const classification = output.parameters?.classification ?? 0;
    if (!Number.isInteger(classification) || (classification as number) < 0 || (classification as number) > 10) throw bad('classification must be a whole number of classes from 1 to 10');
    if (classification !== 0 && output.name !== 'probabilities') throw bad('classification applies to the probabilities output');
    return [{ name: output.name as OutputName, binary: binary ?? allBinary, classification: classification as number }];
  });
}

/**
 * An infer request's JSON part, checked (`header`), with its input's bytes where they come as
 * binary data (`raw`, or null where the input holds its values in `data`); binary outputs where
 * `binaryOutputs` (gRPC's raw contents), else as asked.
 */
export function parseInfer(header: unknown, raw: Uint8Array | null, maxImages: number, binaryOutputs = false): InferImages {
  const checked = checkHeader(header);
  return { ...parseImages(checked.inputs[0], raw, maxImages), outputs: requestedOutputs(checked, binaryOutputs), id: checked.id };
}

/**
 * An HTTP infer request's body (JSON, or JSON followed by binary tensor data as the header
 * Inference-Header-Content-Length says), checked: a ClientError 400 for anything malformed
 * (a length that overruns the body, an element count that does not fit the shape, an unknown
 * datatype, bytes left over), 413 for more images than the server takes.
 */
export function parseInferBody(body: Buffer, headerLength: string | undefined, maxImages: number): InferImages {
  const split = splitBody(body, headerLength);
  const header = checkHeader(split.header);
  const size = header.inputs[0].parameters?.binary_data_size;
  let raw: Buffer | null = null;
  if (size !== undefined) {
    if (headerLength === undefined) throw bad('the input says binary_data_size, but the request has no Inference-Header-Content-Length header');
    if (!Number.isInteger(size) || (size as number) < 0) throw bad(`binary_data_size is ${describe(size)}, not a number of bytes`);
    if ((size as number) > split.binary.length) throw bad(`binary_data_size is ${size}, but only ${split.binary.length} bytes follow the JSON`);
    raw = split.binary.subarray(0, size as number);
  }
  const used = raw?.length ?? 0;
  if (split.binary.length > used) throw bad(`${split.binary.length - used} bytes after the JSON belong to no input`);
  return parseInfer(header, raw, maxImages);
}

/** One output tensor of a response: its JSON description, and its values (JSON) or bytes (binary). */
export interface ResponseOutput {
  name: OutputName;
  datatype: 'FP32' | 'BYTES';
  shape: number[];
  /** Values for JSON; null where the output goes as binary data. */
  data: (number | string)[] | null;
  /** The output's bytes as binary data (FP32 little-endian; BYTES each a 4-byte length then its bytes). */
  bytes: Buffer;
}

/** The most probable class of row `row`. */
function best(probabilities: Float32Array, row: number, classes: number): number {
  let top = 0;
  for (let c = 1; c < classes; c++) if (probabilities[row * classes + c] > probabilities[row * classes + top]) top = c;
  return top;
}

/** BYTES elements as binary data: each its length (4 bytes, little-endian), then its UTF-8 bytes. */
function bytesTensor(values: string[]): Buffer {
  const parts = values.flatMap((value) => {
    const text = Buffer.from(value, 'utf8');
    const length = Buffer.alloc(4);
    length.writeUInt32LE(text.length);
    return [length, text];
  });
  return Buffer.concat(parts);
}

/**
 * The outputs asked for: the probabilities [N, classes] (FP32), the predicted class names [N]
 * (BYTES), or with `classification: K` the K most probable classes of each image as
 * "probability:index:name" [N, K] (BYTES), the classification extension's form.
 */
export function responseOutputs(classifier: Pick<ImageClassifier, 'classNames'>, probabilities: Float32Array, images: Pick<InferImages, 'count' | 'outputs'>): ResponseOutput[] {
  const classes = classifier.classNames.length;
  return images.outputs.map((output): ResponseOutput => {
    if (output.name === 'probabilities' && output.classification === 0) {
      const bytes = Buffer.from(probabilities.buffer, probabilities.byteOffset, probabilities.byteLength);
      return { name: output.name, datatype: 'FP32', shape: [images.count, classes], data: output.binary ? null : Array.from(probabilities), bytes };
    }
    let values: string[];
    let shape: number[];
    if (output.name === 'probabilities') {
      const k = Math.min(output.classification, classes);
      shape = [images.count, k];
      values = Array.from({ length: images.count }, (_, row) => {
        const order = classifier.classNames.map((_, c) => c).sort((a, b) => probabilities[row * classes + b] - probabilities[row * classes + a] || a - b);
        return order.slice(0, k).map((c) => `${probabilities[row * classes + c]}:${c}:${classifier.classNames[c]}`);
      }).flat();
    } else {
      shape = [images.count];
      values = Array.from({ length: images.count }, (_, row) => classifier.classNames[best(probabilities, row, classes)]);
    }
    return { name: output.name, datatype: 'BYTES', shape, data: output.binary ? null : values, bytes: bytesTensor(values) };
  });
}

/**
 * The HTTP infer response: JSON alone, or (where an output is binary) the JSON followed by the
 * binary outputs' bytes in order, with the JSON's length for the Inference-Header-Content-Length header.
 */
export function inferResponse(modelName: string, version: string | undefined, outputs: ResponseOutput[], id?: string): { body: Buffer | object; headerLength: number | null } {
  const json = {
    model_name: modelName,
    ...(version === undefined ? {} : { model_version: version }),
    ...(id === undefined ? {} : { id }),
    outputs: outputs.map((output) =>
      output.data === null
        ? { name: output.name, datatype: output.datatype, shape: output.shape, parameters: { binary_data_size: output.bytes.length } }
        : { name: output.name, datatype: output.datatype, shape: output.shape, data: output.data },
    ),
  };
  const binary = outputs.filter((output) => output.data === null);
  if (binary.length === 0) return { body: json, headerLength: null };
  const header = Buffer.from(JSON.stringify(json), 'utf8');
  return { body: Buffer.concat([header, ...binary.map((output) => output.bytes)]), headerLength: header.length };
}

/**
 * The model metadata: its input and outputs with datatypes and shapes (-1: any batch size). The
 * input is declared UINT8 (pixels 0..255, a light garment on black); FP32 in [0, 1] is accepted
 * too, as the parameters say.
 */
export function modelMetadata(classifier: ImageClassifier, versions: string[]): object {
  return {
    name: classifier.name,
    versions,
    platform: `fmnist-${classifier.kind}`,
    parameters: { runtime: classifier.runtime, classes: classifier.classNames, input_datatypes: [...INPUT_DATATYPES] },
    inputs: [{ name: INPUT_NAME, datatype: 'UINT8', shape: [-1, IMAGE_SIZE, IMAGE_SIZE] }],
    outputs: [
      { name: 'probabilities', datatype: 'FP32', shape: [-1, classifier.classNames.length] },
      { name: 'classes', datatype: 'BYTES', shape: [-1] },
    ],
  };
}

/** The model configuration (the model configuration extension, in Triton's form): batching and the tensors without their batch dimension. */
export function modelConfig(classifier: ImageClassifier, batching: { maxBatch: number; maxWaitMs: number }): object {
  return {
    name: classifier.name,
    platform: `fmnist-${classifier.kind}`,
    runtime: classifier.runtime,
    max_batch_size: batching.maxBatch,
    input: [{ name: INPUT_NAME, data_type: 'TYPE_UINT8', dims: [IMAGE_SIZE, IMAGE_SIZE] }],
    output: [
      { name: 'probabilities', data_type: 'TYPE_FP32', dims: [classifier.classNames.length] },
      { name: 'classes', data_type: 'TYPE_STRING', dims: [1] },
    ],
    dynamic_batching: { max_queue_delay_microseconds: Math.round(batching.maxWaitMs * 1000) },
    parameters: { classes: classifier.classNames },
  };
}
