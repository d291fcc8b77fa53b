/**
 * `fmnist app`'s server without a browser: the page and its files with the isolation headers and
 * the right content types, the data and the model files read-only, nothing else; and the command.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { AppInfo } from '../src/app/api.ts';
import { startAppServer } from '../src/app/server.ts';
import { jsKernels } from '../src/kernels/index.ts';
import { cnnArchitecture } from '../src/models/cnn.ts';
import { saveModel } from '../src/models/model-file.ts';
import { mlpArchitecture } from '../src/models/mlp.ts';
import { Sequential } from '../src/models/sequential.ts';
import { Rng } from '../src/random/rng.ts';
import { ensureWebBuild } from '../scripts/build-web.ts';
import { isOneLineError, runCli } from './helpers/cli.ts';
import { REAL_DATA_DIR, tempDir } from './helpers/idx-files.ts';

const CLI = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));

/** A built page of three files: enough to check what the server does with each kind. */
function webDir(): string {
  const dir = tempDir();
  mkdirSync(join(dir, 'assets'));
  writeFileSync(join(dir, 'index.html'), '<!doctype html><html><head><title>t</title></head><body></body></html>');
  writeFileSync(join(dir, 'assets', 'main.js'), 'console.log(1);');
  writeFileSync(join(dir, 'assets', 'kernels.wasm'), new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0]));
  return dir;
}

/**
 * A run folder of an MLP on CNN features beside its CNN, as a pipeline writes them: the
 * model's input names the CNN's folder, which the server offers as its extractor.
 */
async function featureModelFolders(): Promise<{ mlp: string; cnn: string }> {
  const root = tempDir();
  const cnnDir = join(root, 'cnn');
  const mlpDir = join(root, 'cnn-features-mlp');
  const { architecture, featureLayer } = cnnArchitecture({ channels: [4, 4, 4, 4, 4], features: 8, convDropout: 0, featureDropout: 0 });
  const cnn = new Sequential(jsKernels, architecture);
  cnn.initialize(Rng.fromSeed(1));
  await saveModel(cnnDir, cnn, { kind: 'cnn', input: { type: 'pixels', scale: 1 / 255 }, classNames: ['a'], featureLayer });
  const mlp = new Sequential(jsKernels, mlpArchitecture({ hidden: 4, dropout: 0, init: 'he' }, 8));
  mlp.initialize(Rng.fromSeed(2));
  await saveModel(mlpDir, mlp, { kind: 'cnn-features-mlp', input: { type: 'cnn-features', extractor: '../cnn', featureLayer, mean: Array(8).fill(0), std: Array(8).fill(1) }, classNames: ['a'] });
  writeFileSync(join(mlpDir, 'history.json'), '[]');
  writeFileSync(join(mlpDir, 'split.npy'), 'not served');
  return { mlp: mlpDir, cnn: cnnDir };
}

test('the server answers the page, the data and the models with the isolation headers, and nothing else', async () => {
  const web = webDir();
  const folders = await featureModelFolders();
  const server = await startAppServer({ webDir: web, modelDir: folders.mlp, port: 0, data: { dataDir: REAL_DATA_DIR } });
  const get = (path: string) => fetch(new URL(path, server.url));
  try {
    const page = await get('/');
    assert.equal(page.status, 200);
    assert.equal(page.headers.get('cross-origin-opener-policy'), 'same-origin');
    assert.equal(page.headers.get('cross-origin-embedder-policy'), 'require-corp');
    assert.match(page.headers.get('content-type') ?? '', /^text\/html/);
    assert.match(await page.text(), /<meta name="fmnist-app" content="api\/info" \/>\s*<\/head>/, 'the page learns that fmnist app serves it');
    for (const [path, type] of [['/assets/main.js', /^text\/javascript/], ['/assets/kernels.wasm', /^application\/wasm$/]] as const) {
      const response = await get(path);
      assert.equal(response.status, 200, path);
      assert.match(response.headers.get('content-type') ?? '', type, path);
      assert.equal(response.headers.get('cross-origin-embedder-policy'), 'require-corp', path);
    }

    const info = (await (await get('api/info')).json()) as AppInfo;
    assert.deepEqual(Object.keys(info.data ?? {}).sort(), ['testImages', 'testLabels', 'trainImages', 'trainLabels']);
    assert.equal(info.data?.trainLabels.name, 'train-labels-idx1-ubyte.gz');
    assert.equal(info.models.length, 1);
    const [model] = info.models;
    assert.equal(model.kind, 'cnn-features-mlp');
    assert.deepEqual(model.files, ['model.json', 'model.safetensors', 'history.json']);

    const labels = await get(info.data!.trainLabels.path);
    assert.equal(labels.headers.get('content-type'), 'application/octet-stream');
    assert.ok(Buffer.from(await labels.arrayBuffer()).equals(readFileSync(join(REAL_DATA_DIR, 'train-labels-idx1-ubyte.gz'))), 'the file as it is on disk');
    const weights = await get(`${model.path}model.safetensors`);
    assert.ok(Buffer.from(await weights.arrayBuffer()).equals(readFileSync(join(folders.mlp, 'model.safetensors'))));
    const extractor = await get(`${model.extractorPath}model.json`);
    assert.equal(await extractor.text(), readFileSync(join(folders.cnn, 'model.json'), 'utf8'), 'the CNN the features come from');

    // Nothing outside the page's folder, and of the run folder only the listed files.
    for (const path of ['/../package.json', '/%2e%2e/package.json', '/assets/%2e%2e/%2e%2e/package.json', `${model.path}split.npy`, `${model.path}..%2F..%2Fcnn%2Fmodel.json`, 'api/data/passwd', '/missing.js']) {
      const response = await get(path);
      assert.equal(response.status, 404, path);
      assert.equal(response.headers.get('cross-origin-opener-policy'), 'same-origin', `${path}: headers on errors too`);
    }
    assert.equal((await fetch(new URL('/', server.url), { method: 'POST' })).status, 404, 'read-only');
  } finally {
    await server.close();
  }
});

test('without data the server still serves the page, which then asks for the files', async () => {
  const server = await startAppServer({ webDir: webDir(), port: 0, data: { dataDir: tempDir() } });
  try {
    const info = (await (await fetch(new URL('api/info', server.url))).json()) as AppInfo;
    assert.equal(info.data, null);
    assert.match(info.dataProblem ?? '', /--data-dir points to .* which lacks train-images-idx3-ubyte/);
    assert.deepEqual(info.models, []);
  } finally {
    await server.close();
  }
});

test('fmnist app serves until Ctrl-C and ends normally; a bad folder or port is one line', { timeout: 120_000 }, async () => {
  await ensureWebBuild();
  const child = spawn(process.execPath, ['--import', 'tsx', CLI, 'app', '--port', '0', '--data-dir', REAL_DATA_DIR], { stdio: ['ignore', 'pipe', 'pipe'] });
  const url = await new Promise<string>((resolve, reject) => {
    let stdout = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      const match = /^app: (http:\/\/127\.0\.0\.1:\d+\/)$/m.exec(stdout);
      if (match) resolve(match[1]);
    });
    child.on('exit', (code) => reject(new Error(`fmnist app ended (${code}) before it served`)));
  });
  const page = await fetch(url);
  assert.equal(page.status, 200);
  assert.equal(page.headers.get('cross-origin-embedder-policy'), 'require-corp');
  assert.match(await page.text(), /<script type="module"[^>]*src="\.\/assets\/index-[\w-]+\.js"/, 'the built page');
  const ended = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  child.kill('SIGINT');
  assert.equal(await ended, 0);

  const noModel = runCli(['app', '--port', '0', '--model', tempDir(), '--data-dir', REAL_DATA_DIR]);
  assert.equal(noModel.status, 1);
  assert.ok(isOneLineError(noModel.stderr), noModel.stderr);
  assert.match(noModel.stderr, /holds no model \(no model\.json\)/);
  const badPort = runCli(['app', '--port', 'eighty']);
  assert.equal(badPort.status, 2);
});
