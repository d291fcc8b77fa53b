/**
 * `fmnist serve` as a user starts it, in a child process, and the clients a test talks to it
 * with: HTTP (JSON, and JSON followed by binary tensors) and gRPC, the client built by
 * @grpc/grpc-js from the proto file the server loads.
 */
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { PROTO_PATH } from '../../src/serve/grpc.ts';

const CLI = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));

export interface RunningServer {
  child: ChildProcess;
  url: string;
  /** The gRPC port, where --grpc-port was given. */
  grpcPort: number | null;
  /** What the server wrote to standard error so far. */
  stderr(): string;
  /** The server's resident memory now, in bytes (Linux). */
  residentBytes(): number;
  /** SIGTERM, then its exit code. */
  stop(): Promise<number | null>;
}

/** Starts `fmnist serve ARGS` (with --port 0) and waits until it listens (on gRPC too, where asked). */
export async function startServe(args: string[]): Promise<RunningServer> {
  const child = spawn(process.execPath, ['--import', 'tsx', CLI, 'serve', '--port', '0', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (chunk) => (stderr += chunk));
  const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
  const wantGrpc = args.includes('--grpc-port');
  const { url, grpcPort } = await new Promise<{ url: string; grpcPort: number | null }>((resolve, reject) => {
    let stdout = '';
    child.stdout!.on('data', (chunk) => {
      stdout += chunk;
      const http = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(stdout);
      const rpc = /listening for gRPC on 127\.0\.0\.1:(\d+)/.exec(stdout);
      if (http && (rpc || !wantGrpc)) resolve({ url: http[1], grpcPort: rpc ? Number(rpc[1]) : null });
    });
    void exited.then((code) => reject(new Error(`fmnist serve exited (code ${code}) before listening: ${stderr}`)));
  });
  return {
    child,
    url,
    grpcPort,
    stderr: () => stderr,
    residentBytes: () => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))![1]) * 1024,
    async stop() {
      child.kill('SIGTERM');
      return exited;
    },
  };
}

/** A binary infer request's body and header: the JSON, then the input's bytes (UINT8, or FP32 little-endian in [0, 1]). */
export function binaryInferRequest(pixels: Uint8Array, datatype: 'UINT8' | 'FP32', extra: { outputs?: object[]; parameters?: object } = {}): { body: Buffer; headers: Record<string, string> } {
  const data = datatype === 'UINT8' ? Buffer.from(pixels) : Buffer.from(Float32Array.from(pixels, (v) => v / 255).buffer);
  const json = Buffer.from(JSON.stringify({ inputs: [{ name: 'images', shape: [pixels.length / 784, 28, 28], datatype, parameters: { binary_data_size: data.length } }], ...extra }));
  return { body: Buffer.concat([json, data]), headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(json.length) } };
}

export interface DecodedOutput {
  name: string;
  datatype: string;
  shape: number[];
  /** Values: from `data`, or decoded from the binary part (FP32 numbers; BYTES strings). */
  values: (number | string)[];
  binary: boolean;
}

/** An infer response, JSON alone or JSON followed by binary outputs (Inference-Header-Content-Length), decoded. */
export function decodeInferResponse(body: Buffer, headerLength: string | null): { json: Record<string, unknown>; outputs: DecodedOutput[] } {
  const jsonLength = headerLength === null ? body.length : Number(headerLength);
  const json = JSON.parse(body.subarray(0, jsonLength).toString('utf8')) as { outputs: { name: string; datatype: string; shape: number[]; data?: (number | string)[]; parameters?: { binary_data_size?: number } }[] };
  let offset = jsonLength;
  const outputs = json.outputs.map((output): DecodedOutput => {
    const size = output.parameters?.binary_data_size;
    if (size === undefined) return { name: output.name, datatype: output.datatype, shape: output.shape, values: output.data!, binary: false };
    const bytes = body.subarray(offset, offset + size);
    offset += size;
    return { name: output.name, datatype: output.datatype, shape: output.shape, values: decodeTensorBytes(output.datatype, bytes), binary: true };
  });
  if (offset !== body.length) throw new Error(`${body.length - offset} bytes of the response belong to no output`);
  return { json: json as unknown as Record<string, unknown>, outputs };
}

/** A tensor's bytes as the binary extension (and gRPC's raw contents) lay them out: FP32 little-endian, BYTES each a 4-byte length and its bytes. */
export function decodeTensorBytes(datatype: string, bytes: Buffer): (number | string)[] {
  if (datatype === 'FP32') return Array.from({ length: bytes.length / 4 }, (_, i) => bytes.readFloatLE(i * 4));
  const values: string[] = [];
  for (let at = 0; at < bytes.length; ) {
    const length = bytes.readUInt32LE(at);
    values.push(bytes.subarray(at + 4, at + 4 + length).toString('utf8'));
    at += 4 + length;
  }
  return values;
}

/** A client of inference.GRPCInferenceService, from the proto file, with each call as a promise. */
export function grpcClient(port: number): { call<T>(method: string, request: object): Promise<T>; close(): void } {
  const definition = protoLoader.loadSync(PROTO_PATH, { keepCase: true, longs: Number, enums: String, defaults: true, oneofs: true });
  const Service = (grpc.loadPackageDefinition(definition).inference as grpc.GrpcObject).GRPCInferenceService as grpc.ServiceClientConstructor;
  const client = new Service(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  return {
    call: <T>(method: string, request: object) =>
      new Promise<T>((resolve, reject) => {
        (client[method] as (request: object, callback: (error: grpc.ServiceError | null, response: T) => void) => void).call(client, request, (error, response) => (error ? reject(error) : resolve(response)));
      }),
    close: () => client.close(),
  };
}
