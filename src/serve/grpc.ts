/**
 * The Open Inference Protocol over gRPC (`fmnist serve --grpc-port`): the service of
 * proto/grpc_predict_v2.proto, loaded by @grpc/proto-loader and served by @grpc/grpc-js, over
 * the same repository, batchers and request checks as HTTP (protocol.ts). An input's values come
 * in its contents or as raw bytes (raw_input_contents); the outputs go back raw where the
 * input came raw or the request asks (binary_data_output), else in their contents.
 */
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { fileURLToPath } from 'node:url';
import { VERSION } from '../version.ts';
import { ClientError, EXTENSIONS, modelMetadata, parseInfer, responseOutputs } from './protocol.ts';
import { MODEL_VERSION, type ModelRepository } from './repository.ts';

/** The service's definition: proto/ at the package's root (two folders up from src/serve and from dist/serve). */
export const PROTO_PATH = fileURLToPath(new URL('../../proto/grpc_predict_v2.proto', import.meta.url));

/** How proto-loader presents messages: camelCase fields, int64 as numbers, every field present, oneofs named. */
export const PROTO_OPTIONS: protoLoader.Options = { keepCase: false, longs: Number, enums: String, defaults: true, oneofs: true };

/** An InferParameter as proto-loader gives it. */
interface Parameter {
  boolParam?: boolean;
  int64Param?: number;
  stringParam?: string;
  parameterChoice?: 'boolParam' | 'int64Param' | 'stringParam';
}

interface Contents {
  uintContents: number[];
  fp32Contents: number[];
  bytesContents: Buffer[];
}

interface InferRequestMessage {
  modelName: string;
  modelVersion: string;
  id: string;
  parameters: Record<string, Parameter>;
  inputs: { name: string; datatype: string; shape: number[]; parameters: Record<string, Parameter>; contents: Contents | null }[];
  outputs: { name: string; parameters: Record<string, Parameter> }[];
  rawInputContents: Buffer[];
}

/** A parameter's value, whichever of its kinds it holds. */
const value = (parameter: Parameter): unknown => (parameter.parameterChoice ? parameter[parameter.parameterChoice] : undefined);
const plain = (parameters: Record<string, Parameter> | undefined): Record<string, unknown> =>
  Object.fromEntries(Object.entries(parameters ?? {}).map(([key, parameter]) => [key, value(parameter)]));

/** The gRPC status of a refusal (ClientError), or INTERNAL for anything else. */
function grpcError(error: unknown): Partial<grpc.StatusObject> {
  if (!(error instanceof ClientError)) return { code: grpc.status.INTERNAL, details: 'internal server error' };
  const codes: Record<ClientError['statusCode'], grpc.status> = {
    400: grpc.status.INVALID_ARGUMENT,
    404: grpc.status.NOT_FOUND,
    413: grpc.status.RESOURCE_EXHAUSTED,
    415: grpc.status.INVALID_ARGUMENT,
    503: grpc.status.UNAVAILABLE,
  };
  return { code: codes[error.statusCode], details: error.message };
}

/** The model's version in a request, checked: empty (the server's choice) or 1. */
function checkVersion(name: string, version: string): void {
  if (version !== '' && version !== MODEL_VERSION) throw new ClientError(404, `model "${name.slice(0, 100)}" has no version "${version.slice(0, 20)}"; it has version ${MODEL_VERSION}`);
}

/** A unary handler: the answer of `handle`, or its error as a gRPC status (a bug is logged). */
function unary<Request, Response>(handle: (request: Request) => Promise<Response> | Response, log: (line: string) => void): grpc.handleUnaryCall<Request, Response> {
  return (call, callback) => {
    Promise.resolve()
      .then(() => handle(call.request))
      .then(
        (response) => callback(null, response),
        (error: unknown) => {
          if (!(error instanceof ClientError)) log(`fmnist serve: error answering a gRPC call: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
          callback(grpcError(error) as grpc.ServiceError);
        },
      );
  };
}

/** The request in the protocol's JSON form (as protocol.ts checks it), and its input's raw bytes where they came raw. */
function inferHeader(request: InferRequestMessage): { header: object; raw: Buffer | null } {
  const raw = request.rawInputContents.length > 0;
  if (raw && request.rawInputContents.length !== request.inputs.length) throw new ClientError(400, `raw_input_contents holds ${request.rawInputContents.length} tensors for ${request.inputs.length} inputs`);
  const inputs = request.inputs.map((input, i) => {
    const parameters = plain(input.parameters);
    if (raw) {
      const filled = input.contents && (input.contents.uintContents.length > 0 || input.contents.fp32Contents.length > 0);
      if (filled) throw new ClientError(400, 'an input has both contents and raw_input_contents; give one');
      return { name: input.name, shape: input.shape, datatype: input.datatype, parameters: { ...parameters, binary_data_size: request.rawInputContents[i].length } };
    }
    const data = input.datatype === 'FP32' ? (input.contents?.fp32Contents ?? []) : (input.contents?.uintContents ?? []);
    return { name: input.name, shape: input.shape, datatype: input.datatype, parameters, data };
  });
  const header = {
    ...(request.id ? { id: request.id } : {}),
    parameters: plain(request.parameters),
    inputs,
    ...(request.outputs.length > 0 ? { outputs: request.outputs.map((output) => ({ name: output.name, parameters: plain(output.parameters) })) } : {}),
  };
  return { header, raw: raw ? request.rawInputContents[0] : null };
}

export interface GrpcServer {
  port: number;
  close(): Promise<void>;
}

/** Serves the repository's models over gRPC on `host:port` (0: any free port). */
export async function startGrpcServer(
  repository: ModelRepository,
  options: { host: string; port: number; maxImagesPerRequest: number; maxMessageBytes?: number; log?: (line: string) => void },
): Promise<GrpcServer> {
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const definition = protoLoader.loadSync(PROTO_PATH, PROTO_OPTIONS);
  const service = (grpc.loadPackageDefinition(definition).inference as grpc.GrpcObject).GRPCInferenceService as grpc.ServiceClientConstructor;
  const server = new grpc.Server({ 'grpc.max_receive_message_length': options.maxMessageBytes ?? 16 * 2 ** 20 });
  server.addService(service.service, {
    ServerLive: unary(() => ({ live: true }), log),
    ServerReady: unary(() => ({ ready: repository.ready }), log),
    ModelReady: unary(({ name, version }: { name: string; version: string }) => {
      checkVersion(name, version);
      return { ready: repository.state(name) === 'READY' };
    }, log),
    ServerMetadata: unary(() => ({ name: 'fmnist', version: VERSION, extensions: [...EXTENSIONS] }), log),
    ModelMetadata: unary(({ name, version }: { name: string; version: string }) => {
      checkVersion(name, version);
      const served = repository.served(name);
      if (!served) repository.acquire(name);
      return modelMetadata(served!.classifier, [MODEL_VERSION]);
    }, log),
    ModelInfer: unary(async (request: InferRequestMessage) => {
      checkVersion(request.modelName, request.modelVersion);
      const started = performance.now();
      const { served, done } = repository.acquire(request.modelName);
      let ok = false;
      try {
        const { header, raw } = inferHeader(request);
        const images = parseInfer(header, raw, options.maxImagesPerRequest, raw !== null);
        const probabilities = await served.batcher.submit(images.pixels, images.count);
        const outputs = responseOutputs(served.classifier, probabilities, images);
        // The protocol allows raw contents only for all outputs together.
        const asRaw = outputs.some((output) => output.data === null);
        ok = true;
        return {
          modelName: served.name,
          modelVersion: MODEL_VERSION,
          id: images.id ?? '',
          outputs: outputs.map((output) => ({
            name: output.name,
            datatype: output.datatype,
            shape: output.shape,
            contents: asRaw ? null : output.datatype === 'FP32' ? { fp32Contents: output.data } : { bytesContents: (output.data as string[]).map((text) => Buffer.from(text, 'utf8')) },
          })),
          rawOutputContents: asRaw ? outputs.map((output) => output.bytes) : [],
        };
      } finally {
        done();
        served.statistics.request(ok, (performance.now() - started) / 1000);
      }
    }, log),
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`${options.host}:${options.port}`, grpc.ServerCredentials.createInsecure(), (error, bound) => (error ? reject(error) : resolve(bound))),
  );
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        // Calls in flight are answered first (tryShutdown), as HTTP's are.
        server.tryShutdown(() => resolve());
      }),
  };
}
