import { Option, type Command } from 'commander';
import { existsSync, statSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { UsageError } from '../../errors.ts';
import { integerBetween, nonNegativeNumber, positiveNumber } from '../../runs/options.ts';
import { startGrpcServer } from '../../serve/grpc.ts';
import { serveHost } from '../../serve/hosts.ts';
import { folderModels, ModelRepository, repositoryModels } from '../../serve/repository.ts';
import { buildServer, SERVER_DEFAULTS } from '../../serve/server.ts';
import { parser } from '../parse.ts';
import { addBackendOptions, log, type BackendFlags } from '../shared.ts';

/**
 * The kernels' threads unless --threads says otherwise: one. The forward passes take one core
 * and the event loop and the clients the other; a second kernel thread spun on that core and
 * served half as many requests per CPU second (docs/serving.md).
 */
const SERVE_THREADS = 1;

interface ServeFlags extends BackendFlags {
  model?: string;
  modelRepository?: string;
  port: number;
  grpcPort?: number;
  host: string;
  maxBatch: number;
  maxWait: number;
  maxRequestImages: number;
  bodyLimit: number;
  maxMegapixels: number;
  /** False with --no-forward-thread. */
  forwardThread: boolean;
  runtime: 'ours' | 'onnx';
}

/** `fmnist serve`: an inference server (KServe v2 protocol over HTTP and gRPC, image classification, metrics) for a model, a pipeline's three, or a repository of them. */
export function addServeCommand(program: Command): void {
  addBackendOptions(
    program
      .command('serve')
      .description(
        'serve a model folder\'s model, a pipeline\'s three, or every model of a repository folder, over HTTP and optionally gRPC: the Open Inference Protocol (KServe v2) with binary tensors, the model repository, statistics and configuration, image classification, Prometheus metrics; SIGTERM finishes the requests in flight, then exits',
      )
      .option('--model <dir>', 'a model folder (served under its folder name) or a pipeline folder (served as mlp, cnn, cnn-features-mlp)')
      .option('--model-repository <dir>', 'a folder of model and pipeline folders, each served by its name (a pipeline\'s as <name>-mlp, <name>-cnn, <name>-cnn-features-mlp); models added later are loaded with POST /v2/repository/models/<name>/load')
      .option('--port <n>', 'TCP port of HTTP (0: any free one, printed at start)', parser(integerBetween(0, 65535)), 8080)
      .option('--grpc-port <n>', 'also serve gRPC (inference.GRPCInferenceService) on this port (0: any free one, printed at start)', parser(integerBetween(0, 65535)))
      .option('--host <address>', 'address to listen on (0.0.0.0: every interface)', '127.0.0.1')
      .option('--max-batch <n>', 'most images in one forward pass: concurrent requests are batched up to this', parser(integerBetween(1, 4096)), SERVER_DEFAULTS.maxBatch)
      .option('--max-wait <ms>', 'longest a request waits for others to share its forward pass, in milliseconds (0: only those that arrived while the previous pass ran)', parser(nonNegativeNumber), SERVER_DEFAULTS.maxWaitMs)
      .option('--max-request-images <n>', 'most images in one infer request (more: 413)', parser(integerBetween(1, 65536)), SERVER_DEFAULTS.maxImagesPerRequest)
      .option('--body-limit <MiB>', 'largest request body, in MiB (more: 413)', parser(positiveNumber), SERVER_DEFAULTS.bodyLimit / 2 ** 20)
      .option('--max-megapixels <n>', 'largest image the classify route decodes, in megapixels (more: 413)', parser(positiveNumber), SERVER_DEFAULTS.maxImagePixels / 1e6)
      .option('--no-forward-thread', 'run the forward passes on the event loop\'s thread instead of a thread of their own')
      .addOption(new Option('--runtime <name>', 'what computes the forward passes: our engine, or ONNX Runtime on the exported model (fmnist export)').choices(['ours', 'onnx']).default('ours')),
    `${SERVE_THREADS}, which served the most requests on 2 cores: see docs/serving.md`,
  ).action(async (flags: ServeFlags) => {
    if ((flags.model === undefined) === (flags.modelRepository === undefined)) throw new UsageError('Give --model DIR (one model or a pipeline) or --model-repository DIR (a folder of them), one of the two.');
    if (flags.modelRepository !== undefined && !(existsSync(flags.modelRepository) && statSync(flags.modelRepository).isDirectory())) {
      throw new UsageError(`${flags.modelRepository} is not a folder; --model-repository takes a folder of model and pipeline folders.`);
    }
    const threads = flags.threads ?? SERVE_THREADS;
    const find = flags.model !== undefined ? folderModels(flags.model) : repositoryModels(flags.modelRepository!);
    const host = await serveHost({ runtime: flags.runtime, forwardThread: flags.forwardThread, backend: flags.backend, threads, log });
    const repository = new ModelRepository(host, find, { maxBatch: flags.maxBatch, maxWaitMs: flags.maxWait });
    try {
      await repository.loadAll();
    } catch (error) {
      await repository.close();
      throw error;
    }
    const app = buildServer({
      repository,
      maxImagesPerRequest: flags.maxRequestImages,
      bodyLimit: Math.round(flags.bodyLimit * 2 ** 20),
      maxImagePixels: Math.round(flags.maxMegapixels * 1e6),
      log,
    });
    const stop = new Promise<string>((resolve) => {
      process.once('SIGTERM', () => resolve('SIGTERM'));
      process.once('SIGINT', () => resolve('SIGINT'));
    });
    await app.listen({ port: flags.port, host: flags.host });
    const grpc = flags.grpcPort === undefined ? null : await startGrpcServer(repository, { host: flags.host, port: flags.grpcPort, maxImagesPerRequest: flags.maxRequestImages });
    const { address, port } = app.server.address() as AddressInfo;
    const hostName = address.includes(':') ? `[${address}]` : address;
    log(`models: ${repository.readyNames().join(', ')} on ${repository.runtime}; batches of up to ${flags.maxBatch} images, waiting up to ${flags.maxWait} ms`);
    console.log(`listening on http://${hostName}:${port}`);
    if (grpc) console.log(`listening for gRPC on ${hostName}:${grpc.port}`);
    const signal = await stop;
    log(`${signal}: no new connections; finishing the requests in flight`);
    await Promise.all([app.close(), grpc?.close()]);
    await repository.close();
    log('stopped');
  });
}
