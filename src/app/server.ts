/**
 * The web app's server (`fmnist app`): the built page (dist/web), the four data files as the
 * CLI locates them, and the models of one run folder, all read-only, on loopback by default.
 * Every answer carries the headers that make the page cross-origin isolated, so the kernels
 * can share their memory with workers and train on every core.
 */
import Fastify, { type FastifyReply } from 'fastify';
import { createReadStream, existsSync, readFileSync, statSync } from 'node:fs';
import { basename, extname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { findDataFile } from '../data/files.ts';
import { locateData, type LocateOptions } from '../data/locate.ts';
import { DATA_FILES, type DataFileKey } from '../data/manifest.ts';
import { UserError } from '../errors.ts';
import { modelFolders } from '../inference/classifier.ts';
import { readModelDescription } from '../models/model-file.ts';
import { MODEL_FILES, MODEL_RUN_FILES, RUN_FILES } from '../runs/run-files.ts';
import { VERSION } from '../version.ts';
import { ISOLATION_HEADERS, type AppInfo, type ServedDataFile, type ServedModel } from './api.ts';

/** dist/web/ at the package root: two folders up from both src/app and dist/app. */
export const WEB_DIR = fileURLToPath(new URL('../../dist/web/', import.meta.url));

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.wasm': 'application/wasm',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.txt': 'text/plain; charset=utf-8',
  '.webmanifest': 'application/manifest+json',
};

/** The files of a model's folder the page may read (the run folder's own list); nothing else of the folder is served. */
const SERVED_FILES: readonly string[] = MODEL_RUN_FILES;
/** Of the CNN an MLP on features takes its input from, the model alone. */
const EXTRACTOR_FILES: readonly string[] = MODEL_FILES;

export interface AppServerOptions {
  /** The built page; default dist/web. */
  webDir?: string;
  /** A run folder (fmnist train, a pipeline, a search trial) whose models the page may load. */
  modelDir?: string;
  /** Default 127.0.0.1 (loopback only). */
  host?: string;
  /** Default 8000; 0 picks a free port. */
  port?: number;
  /** Where the data is looked for, as the CLI looks (see data/locate.ts). */
  data?: LocateOptions;
  /** Let the page load data files that differ from the official release. */
  allowModifiedData?: boolean;
  log?: (message: string) => void;
}

export interface AppServer {
  /** The page's address, e.g. http://127.0.0.1:8000/. */
  url: string;
  info: AppInfo;
  close(): Promise<void>;
}

/** The models of `dir` with their folders on disk; folders without a saved model (an unfinished pipeline step) are left out. */
function servedModels(dir: string, log?: (message: string) => void): { model: ServedModel; dir: string; extractorDir?: string }[] {
  const served = [];
  for (const folder of modelFolders(dir)) {
    if (!existsSync(join(folder.dir, RUN_FILES.model))) {
      log?.(`app: ${folder.dir} holds no model yet; leaving it out`);
      continue;
    }
    const description = readModelDescription(folder.dir);
    const name = encodeURIComponent(folder.name);
    const model: ServedModel = {
      name: folder.name,
      kind: description.kind,
      path: `api/models/${name}/`,
      files: SERVED_FILES.filter((file) => existsSync(join(folder.dir, file))),
    };
    let extractorDir: string | undefined;
    if (description.input.type === 'cnn-features') {
      extractorDir = resolve(folder.dir, description.input.extractor);
      model.extractorPath = `api/models/${name}/extractor/`;
    }
    served.push({ model, dir: folder.dir, extractorDir });
  }
  if (served.length === 0) throw new UserError(`${dir} holds no finished model (no model.json); pass the folder of fmnist train, fmnist pipeline or a search trial.`);
  return served;
}

/** The located data files by key, or why there are none. */
async function servedData(options: AppServerOptions): Promise<{ files: Record<DataFileKey, { served: ServedDataFile; path: string }> } | { problem: string }> {
  try {
    const location = await locateData(options.data);
    options.log?.(`data: ${location.dir} (${location.origin})`);
    const files = {} as Record<DataFileKey, { served: ServedDataFile; path: string }>;
    for (const spec of DATA_FILES) {
      const path = findDataFile(location.dir, spec.name);
      if (path === null) throw new UserError(`${location.dir} lacks ${spec.name} (plain or .gz).`);
      files[spec.key] = { path, served: { name: basename(path), path: `api/data/${encodeURIComponent(basename(path))}` } };
    }
    return { files };
  } catch (error) {
    if (!(error instanceof UserError)) throw error;
    options.log?.(`app: serving no data (${error.message}); the page will ask for the four files`);
    return { problem: error.message };
  }
}

/** Streams a file with its length and content type. */
function sendFile(reply: FastifyReply, path: string, type: string): FastifyReply {
  return reply.type(type).header('Content-Length', statSync(path).size).send(createReadStream(path));
}

/** The file of `root` a request path names, or null when it names none (or lies outside `root`). */
function fileUnder(root: string, urlPath: string): string | null {
  let decoded: string;
  try {
    decoded = decodeURIComponent(urlPath);
  } catch {
    return null;
  }
  if (decoded.includes('\0')) return null;
  const path = resolve(root, `.${decoded.endsWith('/') ? `${decoded}index.html` : decoded}`);
  const inside = relative(root, path);
  if (inside.startsWith('..') || inside.startsWith(sep) || inside === '') return null;
  return existsSync(path) && statSync(path).isFile() ? path : null;
}

/** Starts the app's server; resolves once it listens. */
export async function startAppServer(options: AppServerOptions = {}): Promise<AppServer> {
  const webDir = resolve(options.webDir ?? WEB_DIR);
  if (!existsSync(join(webDir, 'index.html'))) {
    throw new UserError(`${webDir} holds no built web app (no index.html); run npm run build:web first.`);
  }
  const models = options.modelDir === undefined ? [] : servedModels(options.modelDir, options.log);
  const data = await servedData(options);
  const info: AppInfo = {
    app: 'fmnist',
    version: VERSION,
    data: 'files' in data ? (Object.fromEntries(Object.entries(data.files).map(([key, file]) => [key, file.served])) as AppInfo['data']) : null,
    ...('problem' in data ? { dataProblem: data.problem } : {}),
    allowModifiedData: options.allowModifiedData ?? false,
    models: models.map((entry) => entry.model),
  };
  const dataByName = new Map('files' in data ? Object.values(data.files).map((file) => [file.served.name, file.path]) : []);
  const modelsByName = new Map(models.map((entry) => [entry.model.name, entry]));

  const app = Fastify({ logger: false });
  app.addHook('onRequest', async (_request, reply) => {
    reply.headers({ ...ISOLATION_HEADERS, 'X-Content-Type-Options': 'nosniff', 'Cache-Control': 'no-cache' });
  });
  const notFound = (reply: FastifyReply, what: string) => reply.code(404).type('text/plain; charset=utf-8').send(`${what} is not served here.\n`);

  app.get('/api/info', async () => info);
  app.get<{ Params: { name: string } }>('/api/data/:name', async (request, reply) => {
    const path = dataByName.get(request.params.name);
    return path === undefined ? notFound(reply, request.params.name) : sendFile(reply, path, 'application/octet-stream');
  });
  const modelFile = (folder: string | undefined, file: string, allowed: readonly string[], reply: FastifyReply) => {
    if (folder === undefined || !allowed.includes(file) || !existsSync(join(folder, file))) return notFound(reply, file);
    return sendFile(reply, join(folder, file), CONTENT_TYPES[extname(file)] ?? 'application/octet-stream');
  };
  app.get<{ Params: { model: string; file: string } }>('/api/models/:model/:file', async (request, reply) =>
    modelFile(modelsByName.get(request.params.model)?.dir, request.params.file, SERVED_FILES, reply),
  );
  app.get<{ Params: { model: string; file: string } }>('/api/models/:model/extractor/:file', async (request, reply) =>
    modelFile(modelsByName.get(request.params.model)?.extractorDir, request.params.file, EXTRACTOR_FILES, reply),
  );
  // The page learns that fmnist app serves it (and where to ask what it offers) from this tag;
  // from a static host it has none, and asks for nothing.
  const indexHtml = readFileSync(join(webDir, 'index.html'), 'utf8').replace('</head>', `  <meta name="fmnist-app" content="api/info" />\n  </head>`);
  app.get('/*', async (request, reply) => {
    const urlPath = request.url.split('?')[0];
    const path = fileUnder(webDir, urlPath);
    if (path === null) return notFound(reply, urlPath);
    if (path === join(webDir, 'index.html')) return reply.type(CONTENT_TYPES['.html']).send(indexHtml);
    return sendFile(reply, path, CONTENT_TYPES[extname(path)] ?? 'application/octet-stream');
  });

  const host = options.host ?? '127.0.0.1';
  try {
    await app.listen({ host, port: options.port ?? 8000 });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE' || code === 'EACCES' || code === 'EADDRNOTAVAIL') {
      throw new UserError(`Cannot listen on ${host} port ${options.port ?? 8000} (${code}); choose another --port (0 picks a free one) or --host.`);
    }
    throw error;
  }
  const address = app.server.address();
  const port = typeof address === 'object' && address !== null ? address.port : options.port;
  const shownHost = host.includes(':') ? `[${host}]` : host;
  return { url: `http://${shownHost}:${port}/`, info, close: () => app.close() };
}
