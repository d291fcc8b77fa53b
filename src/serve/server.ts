/**
 * `fmnist serve` as a function: a Fastify app serving image classifiers over the Open Inference
 * Protocol (KServe v2, see protocol.ts) with its binary tensor data, classification, model
 * repository, statistics and model configuration extensions, plus a route that classifies an
 * image file (PNG, JPEG, or a multipart upload) preprocessed as `fmnist predict` does, and
 * Prometheus metrics.
 *
 * Generic over ImageClassifier: any runtime's classifiers can be served. The models are a
 * repository's (repository.ts): loaded and unloaded while the server runs. Requests to a model
 * go through its Batcher, so concurrent requests share forward passes.
 *
 * Every refusal is a 4xx with a JSON body `{"error": "..."}`: 400 bad input, 404 unknown model,
 * version or route, 413 too large, 415 unsupported content type; 503 while a model is not
 * ready. A 500 means a bug, never a client's input.
 */
import multipart from '@fastify/multipart';
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { topClasses, type ImageClassifier } from '../inference/classifier.ts';
import { ImageError, MAX_IMAGE_PIXELS } from '../inference/images.ts';
import { VERSION } from '../version.ts';
import { ImageDecoder } from './decoder.ts';
import { ServerMetrics } from './metrics.ts';
import { ClientError, EXTENSIONS, HEADER_LENGTH, inferResponse, modelConfig, modelMetadata, parseInferBody, responseOutputs } from './protocol.ts';
import { MODEL_VERSION, ModelRepository } from './repository.ts';

export interface ServerOptions {
  /** The models served: a repository (loaded and unloaded while serving), or classifiers already loaded. */
  repository?: ModelRepository;
  classifiers?: readonly ImageClassifier[];
  /** Most images in one forward pass (classifiers only: a repository has its own batching). */
  maxBatch?: number;
  /** Longest a request waits for others to share its forward pass, in milliseconds (classifiers only). */
  maxWaitMs?: number;
  /** Largest request body in bytes (JSON, binary tensors, image, or multipart upload). */
  bodyLimit?: number;
  /** Most images in one infer request. */
  maxImagesPerRequest?: number;
  /** Largest image (width x height) the classify route decodes. */
  maxImagePixels?: number;
  /** Where unexpected (5xx) errors are told; default: standard error. */
  log?: (message: string) => void;
}

export const SERVER_DEFAULTS = {
  maxBatch: 64,
  // Measured best on 2 cores (docs/serving.md): requests that arrive during a pass form the next
  // batch anyway; waiting longer only left the cores idle.
  maxWaitMs: 0,
  bodyLimit: 16 * 2 ** 20,
  maxImagesPerRequest: 256,
  maxImagePixels: MAX_IMAGE_PIXELS,
} as const;

type ModelRequest = FastifyRequest<{ Params: { name: string; version?: string } }>;

/** Classes listed by the classify route unless the query says `top=K`. */
const DEFAULT_TOP = 3;

/** The model's version in a route, checked: every model has version 1; another is a 404. */
function checkVersion(request: ModelRequest): string | undefined {
  const { name, version } = request.params;
  if (version !== undefined && version !== MODEL_VERSION) throw new ClientError(404, `model "${name.slice(0, 100)}" has no version "${version.slice(0, 20)}"; it has version ${MODEL_VERSION}`);
  return version;
}

export function buildServer(options: ServerOptions): FastifyInstance {
  const settings = { ...SERVER_DEFAULTS, ...options };
  const log = options.log ?? ((message: string) => process.stderr.write(`${message}\n`));
  const repository = options.repository ?? ModelRepository.ofClassifiers(options.classifiers ?? [], { maxBatch: settings.maxBatch, maxWaitMs: settings.maxWaitMs });

  const app = Fastify({
    bodyLimit: settings.bodyLimit,
    logger: false,
    // Types are what the client sent: "5" is not a number of images.
    ajv: { customOptions: { coerceTypes: false } },
    return503OnClosing: true,
    forceCloseConnections: 'idle',
  });
  // Fastify reads text/plain bodies by default; nothing here takes text.
  app.removeContentTypeParser('text/plain');
  const metrics = new ServerMetrics();
  repository.onBatch = (model, images, seconds) => metrics.recordBatch(model, images, seconds);

  app.addHook('onResponse', (request, reply, done) => {
    metrics.recordRequest(request.routeOptions.url ?? 'unmatched', reply.statusCode, reply.elapsedTime / 1000);
    done();
  });
  app.setErrorHandler((error: FastifyError, request, reply) => sendError(error, request, reply, log));
  app.setNotFoundHandler((request, reply) => {
    void reply.code(404).send({ error: `no route ${request.method} ${request.url.slice(0, 200)}` });
  });

  // Routes of a model, with and without its version: /v2/models/:name[/versions/:version]...
  const modelRoutes = (suffix: string) => [`/v2/models/:name${suffix}`, `/v2/models/:name/versions/:version${suffix}`];
  const ready = (request: ModelRequest) => {
    checkVersion(request);
    return repository.state(request.params.name) === 'READY';
  };
  /** The model of a request, ready: its classifier and statistics (404 unknown, 503 not ready). */
  const readyModel = (request: ModelRequest) => {
    checkVersion(request);
    const served = repository.served(request.params.name);
    if (!served) repository.acquire(request.params.name);
    return served!;
  };

  app.get('/v2', async () => ({ name: 'fmnist', version: VERSION, extensions: [...EXTENSIONS] }));
  app.get('/v2/health/live', async () => ({ live: true }));
  app.get('/v2/health/ready', async (_request, reply) => {
    const isReady = repository.ready;
    if (!isReady) void reply.code(503);
    return { ready: isReady };
  });
  for (const url of modelRoutes('')) app.get(url, async (request: ModelRequest) => modelMetadata(readyModel(request).classifier, [MODEL_VERSION]));
  for (const url of modelRoutes('/ready')) {
    app.get(url, async (request: ModelRequest, reply) => {
      const isReady = ready(request);
      if (!isReady) void reply.code(503);
      return { name: request.params.name, ready: isReady };
    });
  }
  for (const url of modelRoutes('/config')) app.get(url, async (request: ModelRequest) => modelConfig(readyModel(request).classifier, repository.batching));
  app.get('/v2/models/stats', async () => ({ model_stats: repository.readyNames().map((name) => repository.served(name)!.statistics.toJson(name)) }));
  for (const url of modelRoutes('/stats')) {
    app.get(url, async (request: ModelRequest) => {
      const served = readyModel(request);
      return { model_stats: [served.statistics.toJson(served.name)] };
    });
  }

  // Inference: JSON, or JSON followed by binary tensor data; parsed here, not by Fastify, so
  // that both forms take one path (an unknown content type is a 415, as elsewhere).
  void app.register(async (scope) => {
    scope.addContentTypeParser(['application/json', 'application/octet-stream'], { parseAs: 'buffer' }, (_request, body, done) => done(null, body));
    for (const url of modelRoutes('/infer')) {
      scope.post(url, async (request: ModelRequest, reply) => {
        const version = checkVersion(request);
        const started = performance.now();
        const { served, done } = repository.acquire(request.params.name);
        let ok = false;
        try {
          const header = request.headers[HEADER_LENGTH];
          const images = parseInferBody(request.body as Buffer, Array.isArray(header) ? header[0] : header, settings.maxImagesPerRequest);
          const probabilities = await served.batcher.submit(images.pixels, images.count);
          const response = inferResponse(served.name, version, responseOutputs(served.classifier, probabilities, images), images.id);
          ok = true;
          if (response.headerLength === null) return response.body;
          void reply.header('Inference-Header-Content-Length', String(response.headerLength)).type('application/octet-stream');
          return response.body;
        } finally {
          done();
          served.statistics.request(ok, (performance.now() - started) / 1000);
        }
      });
    }
  });

  // The model repository extension.
  app.post('/v2/repository/index', async (request) => {
    const body = request.body as { ready?: unknown } | undefined;
    if (body !== undefined && body !== null && (typeof body !== 'object' || (body.ready !== undefined && typeof body.ready !== 'boolean'))) throw new ClientError(400, 'the index request takes {"ready": true or false}, or nothing');
    const index = repository.index();
    return body?.ready === true ? index.filter((model) => model.state === 'READY') : index;
  });
  app.post('/v2/repository/models/:name/load', async (request: ModelRequest) => {
    await repository.load(request.params.name);
    return {};
  });
  app.post('/v2/repository/models/:name/unload', async (request: ModelRequest) => {
    await repository.unload(request.params.name);
    return {};
  });

  app.get('/metrics', async (_request, reply) => {
    void reply.type(metrics.registry.contentType);
    return metrics.registry.metrics();
  });

  const decoder = new ImageDecoder();
  app.addHook('onClose', () => decoder.close());
  // The image route in a scope of its own, so that image bodies and uploads parse only there
  // (an image sent to the infer route is a 415).
  void app.register(async (scope) => {
    scope.addContentTypeParser(['image/png', 'image/jpeg'], { parseAs: 'buffer' }, (_request, body, done) => done(null, body));
    await scope.register(multipart, { limits: { fileSize: settings.bodyLimit, files: 1, fields: 8, parts: 8, headerPairs: 64 } });
    scope.post('/v1/models/:name/classify', async (request: ModelRequest) => {
      const query = request.query as Record<string, unknown>;
      const top = queryTop(query.top);
      const preprocess = queryPreprocess(query.preprocess);
      const { served, done } = repository.acquire(request.params.name);
      try {
        const { bytes, declaredType } = await imageBody(request);
        const image = await decodeForClassify(decoder, bytes, declaredType, { maxPixels: settings.maxImagePixels, preprocess });
        const probabilities = await served.batcher.submit(image.pixels, 1);
        const scores = topClasses(probabilities, 0, served.classifier.classNames, top);
        return { model: served.name, class: scores[0].class, inverted: image.inverted, top: scores };
      } finally {
        done();
      }
    });
  });
  return app;
}

/** The JSON error body, with the error's 4xx status; anything else is a bug, logged and answered 500. */
function sendError(error: FastifyError, request: FastifyRequest, reply: FastifyReply, log: (message: string) => void): void {
  const status = error.statusCode ?? 500;
  if (error.validation) {
    void reply.code(400).send({ error: `invalid request: ${error.message}` });
  } else if (error.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
    const type = String(request.headers['content-type'] ?? 'none').slice(0, 100);
    void reply.code(415).send({ error: `content type ${type} is not taken here: infer takes application/json; classify image/png, image/jpeg or multipart/form-data` });
  } else if (error.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
    void reply.code(413).send({ error: `the body is over the limit of ${request.routeOptions.bodyLimit} bytes` });
  } else if ((status >= 400 && status < 500) || error instanceof ClientError) {
    // Fastify's and the multipart plugin's "not acceptable" (a body that is not multipart) is an unsupported type here.
    void reply.code(status === 406 ? 415 : status).send({ error: error.message });
  } else {
    log(`fmnist serve: error answering ${request.method} ${request.url.slice(0, 200)}: ${error.stack ?? error.message}`);
    void reply.code(500).send({ error: 'internal server error' });
  }
}

function queryTop(value: unknown): number {
  if (value === undefined) return DEFAULT_TOP;
  if (typeof value !== 'string' || !/^\d{1,2}$/.test(value) || Number(value) < 1 || Number(value) > 10) throw new ClientError(400, 'top must be a whole number from 1 to 10');
  return Number(value);
}

function queryPreprocess(value: unknown): boolean {
  if (value === undefined || value === 'true') return true;
  if (value === 'false') return false;
  throw new ClientError(400, 'preprocess must be true or false');
}

/** The image's bytes: the body of an image/png or image/jpeg request, or the one file of a multipart upload. */
async function imageBody(request: FastifyRequest): Promise<{ bytes: Uint8Array; declaredType: string }> {
  if (Buffer.isBuffer(request.body)) return { bytes: request.body, declaredType: String(request.headers['content-type']) };
  if (!request.isMultipart()) throw new ClientError(415, 'send the image as image/png, image/jpeg, or a multipart/form-data upload');
  try {
    const part = await request.file();
    if (!part) throw new ClientError(400, 'the multipart body holds no file');
    return { bytes: await part.toBuffer(), declaredType: part.mimetype };
  } catch (error) {
    if (error instanceof ClientError) throw error;
    const status = (error as FastifyError).statusCode;
    if (status === 413) throw new ClientError(413, `the uploaded file is over the limit of ${request.routeOptions.bodyLimit} bytes`);
    throw new ClientError(400, `malformed multipart body (${(error as Error).message})`);
  }
}

/** The image in Fashion-MNIST's form; a file that is not an image it declares to be is a 400, one of another type a 415. */
async function decodeForClassify(decoder: ImageDecoder, bytes: Uint8Array, declaredType: string, options: { maxPixels: number; preprocess: boolean }) {
  try {
    return await decoder.decode(bytes, options);
  } catch (error) {
    if (!(error instanceof ImageError)) throw error;
    const declaredImage = /^image\/(png|jpeg)\b/i.test(declaredType);
    const status = error.reason === 'too-large' ? 413 : error.reason === 'unsupported' && !declaredImage ? 415 : 400;
    throw new ClientError(status, `the image is ${error.message}`);
  }
}
