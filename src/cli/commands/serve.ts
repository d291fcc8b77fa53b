import { Option, type Command } from 'commander';
import type { AddressInfo } from 'node:net';
import { loadOnnxClassifiers } from '../../export/onnx-runtime.ts';
import { loadClassifiers, type ImageClassifier } from '../../inference/classifier.ts';
import { loadKernels } from '../../kernels/index.ts';
import { integerBetween, nonNegativeNumber, positiveNumber } from '../../runs/options.ts';
import { buildServer, SERVER_DEFAULTS } from '../../serve/server.ts';
import { loadThreadClassifiers } from '../../serve/thread-classifiers.ts';
import { parser } from '../parse.ts';
import { addBackendOptions, log, type BackendFlags } from '../shared.ts';

/**
 * The kernels' threads unless --threads says otherwise: one. The forward passes take one core
 * and the event loop and the clients the other; a second kernel thread spun on that core and
 * served half as many requests per CPU second (docs/serving.md).
 */
const SERVE_THREADS = 1;

interface ServeFlags extends BackendFlags {
  model: string;
  port: number;
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

/** `fmnist serve`: an inference server (KServe v2 protocol, image classification, metrics) for a model or a pipeline's three. */
export function addServeCommand(program: Command): void {
  addBackendOptions(
    program
      .command('serve')
      .description('serve a model folder\'s model, or a pipeline\'s three, over HTTP: the Open Inference Protocol (KServe v2), image classification, Prometheus metrics; SIGTERM finishes the requests in flight, then exits')
      .requiredOption('--model <dir>', 'a model folder (served under its folder name) or a pipeline folder (served as mlp, cnn, cnn-features-mlp)')
      .option('--port <n>', 'TCP port (0: any free one, printed at start)', parser(integerBetween(0, 65535)), 8080)
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
    const threads = flags.threads ?? SERVE_THREADS;
    const { classifiers, close } =
      flags.runtime === 'onnx'
        ? await loadOnnx(flags.model, threads)
        : flags.forwardThread
          ? await loadThreadClassifiers(flags.model, { backend: flags.backend, threads, log })
          : await loadHere(flags.model, flags.backend, threads);
    const app = buildServer({
      classifiers,
      maxBatch: flags.maxBatch,
      maxWaitMs: flags.maxWait,
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
    const { address, port } = app.server.address() as AddressInfo;
    const host = address.includes(':') ? `[${address}]` : address;
    log(`models: ${classifiers.map((classifier) => classifier.name).join(', ')} on ${classifiers[0].runtime}; batches of up to ${flags.maxBatch} images, waiting up to ${flags.maxWait} ms`);
    console.log(`listening on http://${host}:${port}`);
    const signal = await stop;
    log(`${signal}: no new connections; finishing the requests in flight`);
    await app.close();
    await close();
    log('stopped');
  });
}

/** The models exported in memory and run by ONNX Runtime (its own threads; the event loop stays free while it computes). */
async function loadOnnx(dir: string, threads: number): Promise<{ classifiers: ImageClassifier[]; close: () => Promise<void> }> {
  const classifiers = await loadOnnxClassifiers(dir, { threads });
  return { classifiers, close: async () => void (await Promise.all(classifiers.map((classifier) => (classifier as { close?: () => Promise<void> }).close?.()))) };
}

/** The classifiers on this thread, the forward pass blocking the event loop while it runs. */
async function loadHere(dir: string, backend: BackendFlags['backend'], threads: number): Promise<{ classifiers: ImageClassifier[]; close: () => Promise<void> }> {
  const kernels = await loadKernels(backend, { threads, onFallback: log });
  return { classifiers: await loadClassifiers(dir, kernels), close: async () => (kernels as { close?: () => void }).close?.() };
}
