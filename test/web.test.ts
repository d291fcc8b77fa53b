/**
 * The web app in real Chromium (Debian's, driven by playwright-core), served by `fmnist app` and
 * by a plain static server. The page is driven as a person drives it; its figures are checked
 * against the CLI's and Node's for the same run. Screenshots go to test-artifacts/.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { extname, join, resolve } from 'node:path';
import { after, test, type TestContext } from 'node:test';
import { gunzipSync, gzipSync } from 'node:zlib';
import { chromium, type Browser, type Page } from 'playwright-core';
import { startAppServer, type AppServer } from '../src/app/server.ts';
import { loadTestSet, loadTrainingSet } from '../src/data/load.ts';
import { CLASS_NAMES, DATA_FILES } from '../src/data/manifest.ts';
import { loadClassifiers } from '../src/inference/classifier.ts';
import { jsKernels } from '../src/kernels/index.ts';
import { loadWasmKernels } from '../src/kernels/wasm/node.ts';
import { cnnArchitecture } from '../src/models/cnn.ts';
import { saveModel } from '../src/models/model-file.ts';
import { mlpArchitecture } from '../src/models/mlp.ts';
import { Sequential } from '../src/models/sequential.ts';
import { Rng } from '../src/random/rng.ts';
import { forkStreams } from '../src/random/streams.ts';
import { DEFAULT_CNN_CONFIG, DEFAULT_MLP_CONFIG } from '../src/runs/configs.ts';
import { imageJobData, recipe, trainJob, type JobSpec } from '../src/runs/job-core.ts';
import type { EpochRecord } from '../src/training/fit.ts';
import { ensureWebBuild } from '../scripts/build-web.ts';
import { runCli } from './helpers/cli.ts';
import { REAL_DATA_DIR, tempDir } from './helpers/idx-files.ts';

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = join(import.meta.dirname, '..', 'test-artifacts');
const LAUNCH_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];

/**
 * The MLP the page trains and the CLI trains the same way: one epoch on 10,000 images. The
 * defaults' learning rate 0.001 and batch 64 reach 77.9% validation accuracy in one epoch;
 * 0.003 and 32 reach 81.4% (`fmnist train mlp --train-limit 10000 --epochs 1 --lr 0.003 --batch-size 32`).
 */
const PAGE_RUN = { epochs: 1, trainLimit: 10_000, learningRate: 0.003, batchSize: 32, seed: 42 };
const CLI_RUN = ['train', 'mlp', '--backend', 'wasm', '--threads', '1', '--epochs', '1', '--train-limit', '10000', '--lr', '0.003', '--batch-size', '32', '--seed', '42', '--no-report'];

interface Fixture {
  browser: Browser;
  server: AppServer;
  /** The server's --model: a pipeline folder of the CLI's MLP and two untrained models (below). */
  pipelineDir: string;
  /** The CLI's run folder: the figures the page must repeat. */
  modelDir: string;
  /** The page served by fmnist app, shared by the tests that follow one another on it. */
  page: Page;
  /** Console errors and uncaught exceptions of every page opened. */
  errors: string[];
}

let fixture: Promise<Fixture> | undefined;

function watch(page: Page, errors: string[], name: string): Page {
  page.on('console', (message) => {
    if (message.type() === 'error') errors.push(`${name}: ${message.text()}`);
  });
  page.on('pageerror', (error) => errors.push(`${name}: ${String(error)}`));
  return page;
}

/**
 * A pipeline's folder as the server reads it: the CLI's MLP, and a small CNN with an MLP on its
 * features (initialised, not trained: enough to check that the page runs every kind of model
 * as Node does, test-time flipping included).
 */
async function pipelineFolder(): Promise<{ pipelineDir: string; modelDir: string }> {
  const pipelineDir = tempDir();
  writeFileSync(join(pipelineDir, 'pipeline.json'), JSON.stringify({ config: {}, version: 'test' }));
  const modelDir = join(pipelineDir, 'mlp');
  const cli = runCli([...CLI_RUN, '--out', modelDir]);
  assert.equal(cli.status, 0, cli.stderr);
  const { architecture, featureLayer } = cnnArchitecture({ channels: [8, 8, 8, 8, 8], features: 16, convDropout: 0, featureDropout: 0 });
  const cnn = new Sequential(jsKernels, architecture);
  cnn.initialize(Rng.fromSeed(1));
  // Test-time flipping, as the pipeline's CNN has it: the page must flip as Node does.
  await saveModel(join(pipelineDir, 'cnn'), cnn, { kind: 'cnn', input: { type: 'pixels', scale: 1 / 255 }, classNames: [...CLASS_NAMES], featureLayer, testTimeFlip: true });
  const features = new Sequential(jsKernels, mlpArchitecture({ hidden: 8, dropout: 0, init: 'he' }, 16));
  features.initialize(Rng.fromSeed(2));
  const input = { type: 'cnn-features' as const, extractor: '../cnn', featureLayer, flipAverage: true, mean: Array.from({ length: 16 }, (_, i) => i / 100), std: Array(16).fill(0.5) };
  await saveModel(join(pipelineDir, 'cnn-features-mlp'), features, { kind: 'cnn-features-mlp', input, classNames: [...CLASS_NAMES] });
  return { pipelineDir, modelDir };
}

async function setUp(): Promise<Fixture> {
  await ensureWebBuild();
  const { pipelineDir, modelDir } = await pipelineFolder();
  const server = await startAppServer({ port: 0, modelDir: pipelineDir, data: { dataDir: REAL_DATA_DIR } });
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: LAUNCH_ARGS });
  const errors: string[] = [];
  const page = watch(await browser.newPage({ viewport: { width: 1280, height: 900 } }), errors, 'app');
  await page.goto(server.url);
  await page.waitForFunction(() => document.documentElement.dataset.ready === 'true', null, { timeout: 60_000 });
  return { browser, server, pipelineDir, modelDir, page, errors };
}

/** The shared fixture, or null (the test skipped) where Chromium is missing and not required. */
async function withBrowser(t: TestContext): Promise<Fixture | null> {
  if (!existsSync(CHROMIUM)) {
    // CI installs Debian's chromium and sets FMNIST_REQUIRE_BROWSER, so there this fails instead.
    if (process.env.FMNIST_REQUIRE_BROWSER === '1') assert.fail(`${CHROMIUM} is missing; install Debian's chromium package`);
    t.skip(`${CHROMIUM} is not installed (apt-get install chromium)`);
    return null;
  }
  mkdirSync(ARTIFACTS, { recursive: true });
  return (fixture ??= setUp());
}

after(async () => {
  if (fixture === undefined) return;
  const { browser, server } = await fixture;
  await browser.close();
  await server.close();
});

/** Fills the form; `threads` null leaves the thread count alone (WebGPU does not use it). */
async function fillForm(page: Page, fields: Record<string, string | number | null>, threads: number | null): Promise<void> {
  for (const [selector, value] of Object.entries(fields)) await page.fill(selector, value === null ? '' : String(value));
  if (threads !== null) await page.selectOption('#threads', String(threads));
}

async function trainInPage(page: Page, fields: Record<string, string | number | null>, threads: number | null = 1): Promise<void> {
  await page.waitForFunction(() => !(document.getElementById('train-button') as HTMLButtonElement).disabled, null, { timeout: 60_000 });
  await fillForm(page, fields, threads);
  await page.click('#train-button');
  await page.waitForSelector('#results-card:not([hidden])', { timeout: 240_000 });
}

/** The epochs the page lists, with the exact figures it keeps on each row. */
function epochRows(page: Page): Promise<{ epoch: number; valAccuracy: number; trainLoss: number; valLoss: number }[]> {
  return page.$$eval('#epochs-table tbody tr', (rows) =>
    rows.map((row) => {
      const data = (row as HTMLElement).dataset;
      return { epoch: Number(data.epoch), valAccuracy: Number(data.valAccuracy), trainLoss: Number(data.trainLoss), valLoss: Number(data.valLoss) };
    }),
  );
}

const horizontalOverflow = (page: Page) => page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);

test('the page loads cross-origin isolated, without a console error, with the server\'s data and model', { timeout: 300_000 }, async (t) => {
  const setup = await withBrowser(t);
  if (setup === null) return;
  const { page, errors } = setup;
  assert.equal(await page.evaluate(() => crossOriginIsolated), true);
  assert.match((await page.textContent('#status')) ?? '', /Cross-origin isolated: training runs on up to \d+ thread/);
  await page.waitForFunction(() => !(document.getElementById('train-button') as HTMLButtonElement).disabled, null, { timeout: 60_000 });
  assert.match((await page.textContent('#data-status')) ?? '', /60,000 training and 10,000 test images; each file's SHA-256 checked: the four official files/);
  assert.match((await page.textContent('#models-status')) ?? '', /Models: mlp, cnn, cnn-features-mlp; running on wasm \(relaxed SIMD, 1 thread\)\./);
  assert.deepEqual(errors, []);
  await page.screenshot({ path: join(ARTIFACTS, 'web-laptop-start.png') });
});

test('the MLP trained in the page for one epoch on 10,000 images: over 80% validation accuracy, the figures of fmnist train, curves drawn', { timeout: 300_000 }, async (t) => {
  const setup = await withBrowser(t);
  if (setup === null) return;
  const { page, modelDir, errors } = setup;
  await page.check('input[name="kind"][value="mlp"]');
  await trainInPage(page, { '#learning-rate': PAGE_RUN.learningRate, '#epochs': PAGE_RUN.epochs, '#batch-size': PAGE_RUN.batchSize, '#train-limit': PAGE_RUN.trainLimit, '#seed': PAGE_RUN.seed }, 1);
  assert.equal(await page.textContent('#cli-command'), 'fmnist train mlp --backend wasm --threads 1 --seed 42 --epochs 1 --lr 0.003 --batch-size 32 --train-limit 10000');

  const [row] = await epochRows(page);
  assert.ok(row.valAccuracy >= 0.8, `validation accuracy ${row.valAccuracy}`);
  const [cli] = JSON.parse(readFileSync(join(modelDir, 'history.json'), 'utf8')) as EpochRecord[];
  assert.deepEqual({ valAccuracy: row.valAccuracy, trainLoss: row.trainLoss, valLoss: row.valLoss }, { valAccuracy: cli.valAccuracy, trainLoss: cli.trainLoss, valLoss: cli.valLoss }, 'the same figures as the CLI');
  const metrics = JSON.parse(readFileSync(join(modelDir, 'metrics.json'), 'utf8')) as { test: { accuracy: number } };
  assert.match((await page.textContent('#progress-text')) ?? '', new RegExp(`test accuracy ${(metrics.test.accuracy * 100).toFixed(2)}%`));

  // The live curves: a training line and a validation point in each chart.
  for (const chart of ['#loss-chart', '#accuracy-chart']) {
    const marks = await page.$$eval(`${chart} svg path`, (paths) => paths.filter((p) => (p.getAttribute('d') ?? '').length > 10).length);
    assert.ok(marks >= 2, `${chart}: ${marks} drawn marks`);
    assert.match((await page.getAttribute(chart, 'aria-label')) ?? '', /per epoch, training and validation/, `${chart} is named for screen readers`);
  }
  // The results: the report's charts, the classification report and the galleries.
  assert.ok((await page.$$('#results .chart svg')).length >= 4, 'curves and confusion matrices');
  assert.equal(await page.$$eval('#results .tile', (tiles) => tiles.length), 40 + 20);
  assert.deepEqual(errors, []);
  await page.screenshot({ path: join(ARTIFACTS, 'web-laptop-trained.png'), fullPage: true });
});

test('a stroke on the canvas gets the probabilities of every loaded model, those Node computes for the same image', { timeout: 300_000 }, async (t) => {
  const setup = await withBrowser(t);
  if (setup === null) return;
  const { page, pipelineDir, errors } = setup;
  await page.click('#tab-try');
  await page.waitForFunction(() => document.querySelector('#models-status')?.textContent?.includes('page MLP 1'), null, { timeout: 30_000 });
  const box = (await page.locator('#draw').boundingBox())!;
  // A trouser-like shape: two legs joined at the top.
  await page.mouse.move(box.x + 110, box.y + 240);
  await page.mouse.down();
  await page.mouse.move(box.x + 120, box.y + 40, { steps: 12 });
  await page.mouse.move(box.x + 160, box.y + 40, { steps: 6 });
  await page.mouse.move(box.x + 170, box.y + 240, { steps: 12 });
  await page.mouse.up();
  await page.waitForFunction(() => document.querySelectorAll('#predictions li[data-probabilities]').length === 4, null, { timeout: 30_000 });
  const shown = await page.$$eval('#predictions li', (items) => items.map((item) => ({ model: (item as HTMLElement).dataset.model, probabilities: JSON.parse((item as HTMLElement).dataset.probabilities ?? '[]') as number[] })));
  const pixels = Uint8Array.from(((await page.getAttribute('#preview', 'data-pixels')) ?? '').split(',').map(Number));
  assert.equal(pixels.length, 784);
  assert.ok(pixels.some((value) => value > 200), 'the stroke is in the image, light on dark');

  assert.deepEqual(shown.map((item) => item.model), ['server:mlp', 'server:cnn', 'server:cnn-features-mlp', 'page:1']);
  const byModel = new Map(shown.map((item) => [item.model, item.probabilities]));
  // The model trained in the page has the CLI's weights (same run), so it says exactly the same.
  assert.deepEqual(byModel.get('page:1'), byModel.get('server:mlp'));
  // Each served model, rebuilt in the page from its files, gives what Node's engine gives.
  const kernels = await loadWasmKernels({ threads: 1 });
  try {
    for (const classifier of await loadClassifiers(pipelineDir, kernels)) {
      const node = await classifier.classify(pixels, 1);
      const page = byModel.get(`server:${classifier.name}`)!;
      assert.ok(Math.abs(page.reduce((a, b) => a + b, 0) - 1) < 1e-5, `${classifier.name}: probabilities sum to 1`);
      page.forEach((p, c) => assert.ok(Math.abs(p - node[c]) < 1e-6, `${classifier.name}, class ${c}: page ${p}, Node ${node[c]}`));
    }
  } finally {
    kernels.close();
  }
  assert.ok((await page.$$('#bars svg rect, #bars svg path')).length > 0, 'the bars are drawn');
  assert.deepEqual(errors, []);
  await page.screenshot({ path: join(ARTIFACTS, 'web-laptop-try.png') });
});

/** The same job on Node's wasm backend, one thread (as fmnist train runs it): what the page must repeat. */
async function nodeHistory(spec: JobSpec): Promise<EpochRecord[]> {
  const kernels = await loadWasmKernels({ threads: 1 });
  try {
    const loaded = { location: { dir: REAL_DATA_DIR, origin: 'flag' as const }, training: loadTrainingSet(REAL_DATA_DIR), loadTest: () => loadTestSet(REAL_DATA_DIR) };
    const { config } = spec;
    const streams = forkStreams(config.seed);
    const plan = recipe(spec, imageJobData(config, streams, { loaded }), streams);
    return (await trainJob(spec, plan, streams, { kernels, checkpoint: { load: () => null, save: () => {} } })).fit.history;
  } finally {
    kernels.close();
  }
}

test('a run stopped in the page and resumed ends with the figures of an unbroken run', { timeout: 300_000 }, async (t) => {
  const setup = await withBrowser(t);
  if (setup === null) return;
  const { page, errors } = setup;
  await page.click('#tab-train');
  await page.check('input[name="kind"][value="mlp"]');
  // Small batches and a wider layer: a few seconds an epoch, so the stop lands inside the run.
  const run = { learningRate: 0.001, epochs: 3, batchSize: 16, trainLimit: 10_000, seed: 7, hidden: 256, dropout: 0.2 };
  await fillForm(page, { '#learning-rate': run.learningRate, '#epochs': run.epochs, '#batch-size': run.batchSize, '#train-limit': run.trainLimit, '#seed': run.seed, '#hidden': run.hidden, '#dropout': run.dropout }, 1);
  await page.click('#train-button');
  await page.waitForSelector('#epochs-table tbody tr', { timeout: 120_000 });
  await page.click('#stop-button');
  await page.waitForFunction(() => document.getElementById('progress-text')?.textContent?.startsWith('Stopped'), null, { timeout: 60_000 });
  const kept = (await epochRows(page)).length;
  assert.ok(kept >= 1 && kept < run.epochs, `${kept} epochs kept`);
  assert.equal(await page.isEnabled('#resume-button'), true);
  await page.click('#resume-button');
  await page.waitForSelector('#results-card:not([hidden])', { timeout: 240_000 });

  const resumed = await epochRows(page);
  const reference = await nodeHistory({ kind: 'mlp', config: { ...DEFAULT_MLP_CONFIG, ...run, backend: 'wasm', threads: 1 } });
  assert.deepEqual(
    resumed.map((row) => row.valAccuracy),
    reference.map((record) => record.valAccuracy),
  );
  assert.deepEqual(errors, []);
});

test('a small CNN trained in the page, shifted images included, has the figures Node gives it', { timeout: 300_000 }, async (t) => {
  const setup = await withBrowser(t);
  if (setup === null) return;
  const { page, errors } = setup;
  await page.check('input[name="kind"][value="cnn"]');
  const run = { learningRate: 0.002, epochs: 2, batchSize: 32, trainLimit: 1000, seed: 3, channels: [4, 4, 8, 8, 8], features: 16, convDropout: 0.1, featureDropout: 0.3, augmentShift: 1 };
  await trainInPage(
    page,
    {
      '#learning-rate': run.learningRate,
      '#epochs': run.epochs,
      '#batch-size': run.batchSize,
      '#train-limit': run.trainLimit,
      '#seed': run.seed,
      '#channels': run.channels.join(','),
      '#features': run.features,
      '#conv-dropout': run.convDropout,
      '#feature-dropout': run.featureDropout,
      '#augment-shift': run.augmentShift,
    },
    1,
  );
  const reference = await nodeHistory({ kind: 'cnn', config: { ...DEFAULT_CNN_CONFIG, ...run, backend: 'wasm', threads: 1 } });
  const rows = await epochRows(page);
  assert.deepEqual(
    rows.map(({ valAccuracy, trainLoss, valLoss }) => ({ valAccuracy, trainLoss, valLoss })),
    reference.map(({ valAccuracy, trainLoss, valLoss }) => ({ valAccuracy, trainLoss, valLoss })),
  );
  assert.deepEqual(errors, []);
});

test('at 390x844 no tab scrolls sideways', { timeout: 300_000 }, async (t) => {
  const setup = await withBrowser(t);
  if (setup === null) return;
  const { page, errors } = setup;
  await page.setViewportSize({ width: 390, height: 844 });
  for (const tab of ['train', 'try', 'look']) {
    await page.click(`#tab-${tab}`);
    // Charts re-embed as their boxes change width.
    await page.waitForTimeout(800);
    assert.ok((await horizontalOverflow(page)) <= 0, `${tab}: the page is ${await horizontalOverflow(page)} px wider than the window`);
    await page.screenshot({ path: join(ARTIFACTS, `web-phone-${tab}.png`), fullPage: true });
  }
  assert.ok((await page.$$('#look .chart svg')).length >= 4, 'Look shows a run');
  assert.deepEqual(errors, []);
});

/** dist/web as any static host serves it: files with their types, no isolation headers. */
function staticServer(root: string): Promise<Server> {
  const types: Record<string, string> = { '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css', '.wasm': 'application/wasm' };
  const server = createServer((request, response) => {
    const path = resolve(root, `.${(request.url ?? '/').split('?')[0].replace(/\/$/, '/index.html')}`);
    if (!path.startsWith(root) || !existsSync(path) || !statSync(path).isFile()) {
      response.writeHead(404).end();
      return;
    }
    response.writeHead(200, { 'Content-Type': types[extname(path)] ?? 'application/octet-stream' }).end(readFileSync(path));
  });
  return new Promise((done) => server.listen(0, '127.0.0.1', () => done(server)));
}

test('dist/web from a plain static server: one thread, saying so; picked files checked, then trained on', { timeout: 300_000 }, async (t) => {
  const setup = await withBrowser(t);
  if (setup === null) return;
  const root = await ensureWebBuild();
  const server = await staticServer(root);
  const errors: string[] = [];
  const page = watch(await setup.browser.newPage({ viewport: { width: 1280, height: 900 } }), errors, 'static');
  try {
    const address = server.address() as { port: number };
    await page.goto(`http://127.0.0.1:${address.port}/`);
    await page.waitForFunction(() => document.documentElement.dataset.ready === 'true', null, { timeout: 60_000 });
    assert.equal(await page.evaluate(() => crossOriginIsolated), false);
    assert.match((await page.textContent('#status')) ?? '', /Static mode .* Not cross-origin isolated .* training runs on one thread/);
    assert.deepEqual(await page.$$eval('#threads option', (options) => options.map((o) => (o as HTMLOptionElement).value)), ['1']);

    // A modified labels file is refused with the CLI's sentence; the official four are accepted.
    const modified = tempDir();
    for (const spec of DATA_FILES) {
      let bytes = readFileSync(join(REAL_DATA_DIR, `${spec.name}.gz`));
      if (spec.key === 'trainLabels') {
        const plain = gunzipSync(bytes);
        plain[8] = (plain[8] + 1) % 10;
        bytes = gzipSync(plain);
      }
      writeFileSync(join(modified, `${spec.name}.gz`), bytes);
    }
    const pick = (dir: string) => page.setInputFiles('#data-files', DATA_FILES.map((spec) => join(dir, `${spec.name}.gz`)));
    await pick(modified);
    await page.waitForFunction(() => document.getElementById('data-status')?.textContent?.startsWith('The data could not be loaded'), null, { timeout: 60_000 });
    assert.match((await page.textContent('#data-status')) ?? '', /train-labels-idx1-ubyte\.gz is not the official Fashion-MNIST train-labels-idx1-ubyte/);
    assert.equal(await page.isDisabled('#train-button'), true);
    await pick(REAL_DATA_DIR);
    await trainInPage(page, { '#epochs': 1, '#train-limit': 2000 }, 1);
    assert.match((await page.textContent('#progress-text')) ?? '', /^Done in/);
    assert.match((await page.textContent('#speed')) ?? '', /1 thread\)/);
    assert.deepEqual(errors, []);
    await page.screenshot({ path: join(ARTIFACTS, 'web-static.png') });
  } finally {
    await page.close();
    server.close();
  }
});

test('with WebGPU (SwiftShader), the page starts on it, names its adapter, and trains a CNN to the native backend\'s figures', { timeout: 400_000 }, async (t) => {
  const setup = await withBrowser(t);
  if (setup === null) return;
  // WebGPU on SwiftShader, without Dawn's robust buffer access (it halves the speed on a CPU), as in test/webgpu.test.ts.
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: [...LAUNCH_ARGS.filter((arg) => arg !== '--disable-gpu'), '--enable-unsafe-webgpu', '--enable-dawn-features=disable_robustness'] });
  const errors: string[] = [];
  try {
    const page = watch(await browser.newPage({ viewport: { width: 1280, height: 900 } }), errors, 'webgpu');
    await page.goto(setup.server.url);
    await page.waitForFunction(() => document.documentElement.dataset.ready === 'true', null, { timeout: 60_000 });
    assert.match((await page.textContent('#status')) ?? '', /WebGPU: google swiftshader/);
    assert.equal(await page.inputValue('#engine'), 'webgpu');
    assert.equal(await page.isDisabled('#threads'), true, 'threads are WebAssembly\'s');
    assert.match((await page.textContent('#models-status')) ?? '', /running on webgpu \(google swiftshader/);
    await page.check('input[name="kind"][value="cnn"]');
    // The narrow CNN of test/webgpu.test.ts: SwiftShader is about a hundred times slower than the native backend.
    const run = { learningRate: 0.01, epochs: 1, batchSize: 32, trainLimit: 2000, validationFraction: 0.05, seed: 11, channels: [4, 4, 8, 8, 8], features: 16 };
    await trainInPage(page, {
      '#learning-rate': run.learningRate,
      '#epochs': run.epochs,
      '#batch-size': run.batchSize,
      '#train-limit': run.trainLimit,
      '#validation-fraction': run.validationFraction,
      '#seed': run.seed,
      '#channels': run.channels.join(','),
      '#features': run.features,
    }, null);
    assert.match((await page.textContent('#cli-command')) ?? '', /^fmnist train cnn --backend webgpu --seed 11 .*--validation-fraction 0\.05/);
    assert.match((await page.textContent('#speed')) ?? '', /images\/s in epoch 1 on webgpu \(google swiftshader/);
    const [row] = await epochRows(page);
    const [reference] = await nodeHistory({ kind: 'cnn', config: { ...DEFAULT_CNN_CONFIG, ...run, backend: 'wasm', threads: 1 } });
    // Two backends that differ in rounding part ways within a short run (test/webgpu.test.ts): 2 points.
    assert.ok(reference.valAccuracy > 0.5, `the run learns something (${reference.valAccuracy})`);
    assert.ok(Math.abs(row.valAccuracy - reference.valAccuracy) <= 0.02, `validation accuracy ${row.valAccuracy} in the page on WebGPU against ${reference.valAccuracy} in Node`);
    assert.deepEqual(errors, []);
    await page.screenshot({ path: join(ARTIFACTS, 'web-webgpu-trained.png'), fullPage: true });
  } finally {
    await browser.close();
  }
});
