/**
 * `fmnist serve` as a function: a Fastify app serving image classifiers over the Open Inference
 * Protocol (KServe v2, see protocol.ts), plus a route that classifies an image file (PNG, JPEG,
 * or a multipart upload) preprocessed as `fmnist predict` does, and Prometheus metrics.
 *
 * Generic over ImageClassifier: any runtime's classifiers can be served. Requests to a model go
 * through its Batcher, so concurrent requests share forward passes.
 *
 * Every refusal is a 4xx with a JSON body `{"error": "..."}`: 400 bad input, 404 unknown model
 * or route, 413 too large, 415 unsupported content type. A 500 means a bug, never a client's input.
 */
import multipart from '@fastify/multipart';
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { topClasses, type ImageClassifier } from '../inference/classifier.ts';
import { ImageError, MAX_IMAGE_PIXELS } from '../inference/images.ts';
import { VERSION } from '../version.ts';
import { Batcher } from './batcher.ts';
import { ImageDecoder } from './decoder.ts';
import { ServerMetrics } from './metrics.ts';
import { ClientError, INFER_REQUEST_SCHEMA, inferResponse, modelMetadata, parseInferRequest, type InferRequest } from './protocol.ts';

export interface ServerOptions {
  /** The models served, each under its `name`. */
  classifiers: readonly ImageClassifier[];
  /** Most images in one forward pass. */
  maxBatch?: number;
  /** Longest a request waits for others to share its forward pass, in milliseconds. */
  maxWaitMs?: number;
  /** Largest request body in bytes (JSON, image, or multipart upload). */
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

interface Served {
  classifier: ImageClassifier;
  batcher: Batcher;
}

type ModelRequest = FastifyRequest<{ Params: { name: string } }>;

/** Classes listed by the classify route unless the query says `top=K`. */
const DEFAULT_TOP = 3;

export function buildServer(options: ServerOptions): FastifyInstance {
  const settings = { ...SERVER_DEFAULTS, ...options };
  const log = options.log ?? ((message: string) => process.stderr.write(`${message}\n`));
  const names = options.classifiers.map((classifier) => classifier.name);
  if (names.length === 0 || new Set(names).size !== names.length) throw new Error(`serve needs at least one model, each with its own name; got [${names.join(', ')}]`);

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
  const served = new Map<string, Served>(
    options.classifiers.map((classifier) => [
      classifier.name,
      {
        classifier,
        batcher: new Batcher(classifier, {
          maxBatch: settings.maxBatch,
          maxWaitMs: settings.maxWaitMs,
          onBatch: (images, seconds) => metrics.recordBatch(classifier.name, images, seconds),
        }),
      },
    ]),
  );
  const model = (request: ModelRequest): Served => {
    const found = served.get(request.params.name);
    if (!found) throw new ClientError(404, `no model "${request.params.name.slice(0, 100)}"; this server serves: ${names.join(', ')}`);
    return found;
  };

  app.addHook('onResponse', (request, reply, done) => {
    metrics.recordRequest(request.routeOptions.url ?? 'unmatched', reply.statusCode, reply.elapsedTime / 1000);
    done();
  });
  app.setErrorHandler((error: FastifyError, request, reply) => sendError(error, request, reply, log));
  app.setNotFoundHandler((request, reply) => {
    void reply.code(404).send({ error: `no route ${request.method} ${request.url.slice(0, 200)}` });
  });

  app.get('/v2', async () => ({ name: 'fmnist', version: VERSION, extensions: [] }));
  app.get('/v2/health/live', async () => ({ live: true }));
  app.get('/v2/health/ready', async () => ({ ready: true }));
  app.get('/v2/models/:name', async (request: ModelRequest) => modelMetadata(model(request).classifier));
  app.get('/v2/models/:name/ready', async (request: ModelRequest) => ({ name: model(request).classifier.name, ready: true }));
  app.post('/v2/models/:name/infer', { schema: { body: INFER_REQUEST_SCHEMA } }, async (request: ModelRequest) => {
    const { classifier, batcher } = model(request);
    const body = request.body as InferRequest;
    const images = parseInferRequest(body, settings.maxImagesPerRequest);
    const probabilities = await batcher.submit(images.pixels, images.count);
    return inferResponse(classifier, probabilities, images, body.id);
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
      const { classifier, batcher } = model(request);
      const query = request.query as Record<string, unknown>;
      const top = queryTop(query.top);
      const preprocess = queryPreprocess(query.preprocess);
      const { bytes, declaredType } = await imageBody(request);
      const image = await decodeForClassify(decoder, bytes, declaredType, { maxPixels: settings.maxImagePixels, preprocess });
      const probabilities = await batcher.submit(image.pixels, 1);
      const scores = topClasses(probabilities, 0, classifier.classNames, top);
      return { model: classifier.name, class: scores[0].class, inverted: image.inverted, top: scores };
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
  } else if (status >= 400 && status < 500) {
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
