/**
 * The web app in real Chromium (Debian's, driven by playwright-core, with a fake camera), served
 * by `fmnist app` and by a plain static server. The page is driven as a person drives it; its
 * figures and files are checked against the CLI's and Node's for the same run, its ONNX against
 * ONNX Runtime. Screenshots go to test-artifacts/.
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
import { predictFiles } from '../src/inference/predict.ts';
import { jsKernels } from '../src/kernels/index.ts';
import { loadWasmKernels } from '../src/kernels/wasm/node.ts';
import { cnnArchitecture } from '../src/models/cnn.ts';
import { saveNpy } from '../src/io/npy.ts';
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
/** Chromium's fake camera (a green test pattern that moves), allowed without asking. */
const CAMERA_ARGS = ['--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream'];

/**
 * The MLP the page trains and the CLI trains the same way: one epoch on 10,000 images. The
 * defaults' learning rate 0.001 and batch 64 reach 77.9% validation accuracy in one epoch;
 * 0.003 and 32 reach 81.4% (`fmnist train mlp --train-limit 10000 --epochs 1 --lr 0.003 --batch-size 32`).
 */
const PAGE_RUN = { epochs: 1, trainLimit: 10_000, learningRate: 0.003, batchSize: 32, seed: 42 };
/** The command the page shows for PAGE_RUN (the option table's flags, in its order). */
const CLI_RUN = ['train', 'mlp', '--epochs', '1', '--batch-size', '32', '--lr', '0.003', '--train-limit', '10000', '--seed', '42', '--backend', 'wasm', '--threads', '1'];

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
  const cli = runCli([...CLI_RUN, '--no-report', '--out', modelDir]);
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
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: [...LAUNCH_ARGS, ...CAMERA_ARGS] });
  try {
    const errors: string[] = [];
    const page = watch(await browser.newPage({ viewport: { width: 1280, height: 900 } }), errors, 'app');
    await page.goto(server.url);
    await page.waitForFunction(() => document.documentElement.dataset.ready === 'true', null, { timeout: 60_000 });
    return { browser, server, pipelineDir, modelDir, page, errors };
  } catch (error) {
    // A fixture that failed leaves nothing running (the file would otherwise never end).
    await browser.close();
    await server.close();
    throw error;
  }
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
  const ready = await fixture.catch(() => null);
  if (ready === null) return;
  const { browser, server } = ready;
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

/** The id of the model the Models tab lists under `label`. */
function keptId(page: Page, label: string): Promise<string | null> {
  return page.getAttribute(`#models-list .model-card:has(h3:text-is("${label}"))`, 'data-model');
}

/** A file the page offers for download: the button's click, and the bytes saved. */
async function download(page: Page, selector: string): Promise<{ name: string; bytes: Buffer }> {
  const [saved] = await Promise.all([page.waitForEvent('download'), page.click(selector)]);
  return { name: saved.suggestedFilename(), bytes: readFileSync(await saved.path()) };
}

/** One of a model's files from the Models tab. */
function modelFile(page: Page, id: string, file: string): Promise<Buffer> {
  return download(page, `#models-list [data-model="${id}"] button[data-file="${file}"]`).then((saved) => saved.bytes);
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
  // The command the page shows is the one the fixture ran: the option table's flags.
  assert.equal(await page.textContent('#cli-command'), ['fmnist', ...CLI_RUN].join(' '));

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
  // Kept in the browser and listed in Models.
  assert.match((await page.getAttribute('#results-card', 'data-model')) ?? '', /^kept:/);
  assert.equal(await keptId(page, 'page MLP 1'), await page.getAttribute('#results-card', 'data-model'));
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

  const kept = await keptId(page, 'page MLP 1');
  assert.deepEqual(shown.map((item) => item.model), ['server:mlp', 'server:cnn', 'server:cnn-features-mlp', kept]);
  const byModel = new Map(shown.map((item) => [item.model, item.probabilities]));
  // The model trained in the page has the CLI's weights (same run), so it says exactly the same.
  assert.deepEqual(byModel.get(kept!), byModel.get('server:mlp'));
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
  // The bars: one per model and class, drawn across the box (not squeezed into a hidden tab's width).
  const bars = await page.$$eval('#bars g.mark-rect path', (paths) => paths.map((path) => (path as SVGGraphicsElement).getBBox().width));
  assert.equal(bars.length, 4 * CLASS_NAMES.length);
  assert.ok(Math.max(...bars) > 50, `the longest bar is ${Math.max(...bars)} px`);
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

test('a small CNN trained in the page (shifts, flips, batch normalisation, test-time flipping) leaves the files and figures of the command it shows', { timeout: 300_000 }, async (t) => {
  const setup = await withBrowser(t);
  if (setup === null) return;
  const { page, errors } = setup;
  await page.click('#tab-train');
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
  const command = (await page.textContent('#cli-command')) ?? '';
  assert.equal(command, 'fmnist train cnn --epochs 2 --batch-size 32 --lr 0.002 --train-limit 1000 --seed 3 --backend wasm --threads 1 --channels 4,4,8,8,8 --features 16 --conv-dropout 0.1 --feature-dropout 0.3');
  // The page's files, downloaded from Models as a person would save them.
  const id = (await page.getAttribute('#results-card', 'data-model')) ?? '';
  await page.click('#tab-models');
  const files = ['model.json', 'model.safetensors', 'history.json', 'metrics.json', 'config.json', 'test_probabilities.npy'];
  const inPage = new Map<string, Buffer>();
  for (const file of files) inPage.set(file, await modelFile(page, id, file));
  // The command itself, run by the CLI.
  const out = tempDir();
  const cli = runCli([...command.split(' ').slice(1), '--no-report', '--out', out]);
  assert.equal(cli.status, 0, cli.stderr);
  const json = (bytes: Buffer) => JSON.parse(bytes.toString('utf8'));
  const fromCli = (file: string) => readFileSync(join(out, file));
  const fromPage = (file: string) => inPage.get(file)!;

  // The bug this guards: the page validated with test-time flips but tested without them and saved no flag.
  assert.equal(json(fromPage('model.json')).testTimeFlip, true);
  assert.deepEqual(json(fromPage('model.json')), json(fromCli('model.json')));
  assert.ok(fromPage('model.safetensors').equals(fromCli('model.safetensors')), 'the same weights, to the bit');
  // A flipped evaluation's loss is -log of the mean probability, taken by the JavaScript engine's
  // Math.log (the page's V8 and Node's differ in the last bit of some logarithms): to 12 digits.
  const roughly = (loss: number) => Number(loss.toPrecision(12));
  const withoutSeconds = (history: EpochRecord[]) => history.map(({ seconds: _, ...record }) => ({ ...record, valLoss: roughly(record.valLoss) }));
  assert.deepEqual(withoutSeconds(json(fromPage('history.json'))), withoutSeconds(json(fromCli('history.json'))));
  type Metrics = { test: { loss: number }; validation: { loss: number } } & Record<string, unknown>;
  const withoutTime = (metrics: Metrics) => ({
    ...metrics,
    trainingSeconds: undefined,
    test: { ...metrics.test, loss: roughly(metrics.test.loss) },
    validation: { ...metrics.validation, loss: roughly(metrics.validation.loss) },
  });
  assert.deepEqual(withoutTime(json(fromPage('metrics.json'))), withoutTime(json(fromCli('metrics.json'))), 'the test figures, evaluated with test-time flipping in both');
  assert.ok(fromPage('test_probabilities.npy').equals(fromCli('test_probabilities.npy')), 'each test image\'s probabilities, to the bit');
  const pageConfig = json(fromPage('config.json'));
  const cliConfig = json(fromCli('config.json'));
  assert.deepEqual({ model: pageConfig.model, config: pageConfig.config, version: pageConfig.version }, { model: cliConfig.model, config: cliConfig.config, version: cliConfig.version });
  const checksums = (config: { data: { files: { sha256: string; status: string }[] } }) => config.data.files.map(({ sha256, status }) => ({ sha256, status }));
  assert.deepEqual(checksums(pageConfig), checksums(cliConfig), 'the same data files, by checksum');
  assert.match(pageConfig.software.browser, /Chrome/);
  // The page shows the same figures it saved.
  const rows = await epochRows(page);
  assert.deepEqual(rows.map((row) => row.valAccuracy), json(fromCli('history.json')).map((record: EpochRecord) => record.valAccuracy));
  assert.deepEqual(errors, []);
});

/** A canvas's pixels as a data URL, to see whether it was redrawn with something else. */
const canvasImage = (page: Page, selector: string) => page.$eval(selector, (canvas) => (canvas as HTMLCanvasElement).toDataURL());

test('while a CNN trains: the learning rate changed mid-run shows on the curves and in history.json; Inside draws every layer and the filters, and redraws them as the weights change', { timeout: 300_000 }, async (t) => {
  const setup = await withBrowser(t);
  if (setup === null) return;
  const { page, errors } = setup;
  // A test image to look at.
  await page.click('#tab-try');
  await page.click('#random-button');
  await page.click('#tab-train');
  await page.check('input[name="kind"][value="cnn"]');
  await fillForm(page, { '#epochs': 2, '#batch-size': 16, '#train-limit': 1000, '#seed': 9, '#channels': '4,4,8,8,8', '#features': 16 }, 1);
  // Without Dirac initialisation: at the low learning rate set below, this narrow network's
  // first filters then move enough within the run for their picture to change.
  await page.click('details.more summary');
  await page.uncheck('#dirac-init');
  await page.click('#train-button');
  await page.waitForFunction(() => /^Epoch 1 of 2, batch/.test(document.getElementById('progress-text')?.textContent ?? ''), null, { timeout: 60_000 });
  await page.fill('#live-lr', '0.0002');
  await page.click('#live-lr-button');
  await page.waitForFunction(() => /^Learning rate 0.0002 from epoch 1, batch \d+ on/.test(document.getElementById('live-lr-status')?.textContent ?? ''), null, { timeout: 30_000 });
  await page.waitForFunction(() => [...document.querySelectorAll('#loss-chart text, #accuracy-chart text')].filter((text) => text.textContent === 'lr 0.0002').length === 2, null, { timeout: 10_000 });

  // Inside, on the run being trained: the weights come as it trains (the tab asks for them).
  await page.click('#tab-inside');
  assert.equal(await page.inputValue('#inside-model'), 'live');
  await page.waitForSelector('#inside-filters canvas', { timeout: 60_000 });
  const firstConv = '#inside-layers figure:nth-child(2) canvas';
  const first = { filters: await canvasImage(page, '#inside-filters canvas'), layers: await canvasImage(page, firstConv) };
  const captions = await page.$$eval('#inside-layers figcaption', (items) => items.map((item) => item.textContent));
  assert.deepEqual(captions.slice(0, 3), ['input: 28x28', 'conv 1 + ReLU: 4 channels of 28x28', 'conv 2 + ReLU: 4 channels of 28x28']);
  assert.equal(captions.at(-1), 'probabilities');
  assert.ok(captions.includes('pool 3: 8 channels of 3x3') && captions.includes('dense + ReLU: 16 units'), captions.join('; '));
  assert.match((await page.textContent('#inside-filters figcaption')) ?? '', /^4 filters of the first convolution/);
  assert.ok((await page.$$('#inside-weights canvas.histogram')).length >= 6, 'a histogram per layer with weights');
  await page.screenshot({ path: join(ARTIFACTS, 'web-laptop-inside-training.png'), fullPage: true });
  // Later weights draw other filters and other activations.
  await page.waitForFunction(
    (before) => {
      const canvas = document.querySelector<HTMLCanvasElement>('#inside-filters canvas');
      return canvas !== null && canvas.toDataURL() !== before;
    },
    first.filters,
    { timeout: 120_000 },
  );
  assert.notEqual(await canvasImage(page, firstConv), first.layers, 'the first convolution\'s outputs changed with the weights');
  // Done (the Train tab, with its results, is out of sight).
  await page.waitForFunction(() => !document.getElementById('results-card')!.hidden, null, { timeout: 240_000 });

  // history.json keeps the change: the step it applied from and the rate.
  const id = (await page.getAttribute('#results-card', 'data-model')) ?? '';
  await page.click('#tab-models');
  const history = JSON.parse((await modelFile(page, id, 'history.json')).toString('utf8')) as EpochRecord[];
  const { test } = JSON.parse((await modelFile(page, id, 'metrics.json')).toString('utf8')) as { test: { confusionMatrix: number[][] } };
  const changes = history.flatMap((record) => record.learningRateChanges ?? []);
  assert.equal(changes.length, 1);
  assert.equal(changes[0].peakLearningRate, 0.0002);
  assert.ok(changes[0].at > 0 && changes[0].at < 1, `applied in the first epoch (at ${changes[0].at})`);
  // Look's curves, the report's own, mark it too.
  await page.click('#tab-look');
  await page.selectOption('#run-select', id);
  await page.waitForFunction(() => [...document.querySelectorAll('#look text')].some((text) => text.textContent === 'lr 0.0002'), null, { timeout: 10_000 });
  // A confusion cell clicked shows its test images: the cell of the most images the model got wrong.
  const cells = test.confusionMatrix.flatMap((row, truth) => row.map((count, predicted) => ({ truth, predicted, count }))).filter((c) => c.truth !== c.predicted);
  const cell = cells.reduce((best, c) => (c.count > best.count ? c : best));
  assert.ok(cell.count > 0);
  // In sight first: the run's facts above the charts (its configuration) may push the matrix below the window.
  const target = page.locator('#look g.mark-rect').first().locator('path').nth(cell.truth * 10 + cell.predicted);
  await target.scrollIntoViewIfNeeded();
  const box = (await target.boundingBox())!;
  await page.mouse.click(box.x + box.width / 2, box.y + box.height / 2);
  await page.waitForSelector(`#look [data-cell="${cell.truth},${cell.predicted}"]`, { timeout: 10_000 });
  const title = (await page.textContent('#look [data-cell] h3')) ?? '';
  const [truth, predicted] = [CLASS_NAMES[cell.truth], CLASS_NAMES[cell.predicted]];
  assert.equal(title, `True ${truth}, predicted ${predicted}: ${cell.count.toLocaleString('en-US')} test image${cell.count === 1 ? '' : 's'}`);
  const tiles = await page.$$eval('#look [data-cell] .tile', (items) => items.map((item) => item.getAttribute('title') ?? ''));
  assert.equal(tiles.length, Math.min(cell.count, 60));
  assert.ok(tiles.every((tip) => tip.includes(`: predicted ${predicted} (`) && tip.endsWith(`true class ${truth}`)), tiles[0]);
  await page.screenshot({ path: join(ARTIFACTS, 'web-laptop-look-cell.png'), fullPage: true });
  assert.deepEqual(errors, []);
});

test('the models trained in the page are still there after a reload, and classify', { timeout: 300_000 }, async (t) => {
  const setup = await withBrowser(t);
  if (setup === null) return;
  const { page, errors } = setup;
  await page.click('#tab-models');
  const before = await page.$$eval('#models-list .model-card', (cards) => cards.map((card) => ({ id: card.getAttribute('data-model'), label: card.querySelector('h3')?.textContent })));
  const kept = before.filter((model) => model.id?.startsWith('kept:'));
  assert.ok(kept.length >= 3, `${kept.length} kept models`);
  await page.reload();
  await page.waitForFunction(() => document.documentElement.dataset.ready === 'true', null, { timeout: 60_000 });
  await page.click('#tab-models');
  const after = await page.$$eval('#models-list .model-card', (cards) => cards.map((card) => ({ id: card.getAttribute('data-model'), label: card.querySelector('h3')?.textContent })));
  assert.deepEqual(after.filter((model) => model.id?.startsWith('kept:')), kept);
  const runs = await page.$$eval('#run-select option', (options) => options.map((o) => (o as HTMLOptionElement).textContent));
  assert.ok(kept.every((model) => runs.includes(model.label ?? '')), `their runs are in Look: ${runs.join(', ')}`);
  await page.waitForFunction(() => !(document.getElementById('random-button') as HTMLButtonElement).disabled, null, { timeout: 60_000 });
  await page.click('#tab-try');
  await page.click('#random-button');
  await page.waitForFunction((count) => document.querySelectorAll('#predictions li[data-probabilities]').length === count, after.length, { timeout: 30_000 });
  assert.deepEqual(errors, []);
});

test('a model downloaded as ONNX (exported in the page) gives the page\'s classes in ONNX Runtime; the page shows how to use it', { timeout: 300_000 }, async (t) => {
  const setup = await withBrowser(t);
  if (setup === null) return;
  const { page, errors } = setup;
  await page.click('#tab-models');
  // The CNN with batch normalisation and test-time flipping trained above.
  const id = (await keptId(page, 'page CNN 3')) ?? '';
  const onnx = await download(page, `#models-list [data-model="${id}"] button[data-file="onnx"]`);
  assert.equal(onnx.name, 'page-cnn-3.onnx');
  await page.click(`#models-list [data-model="${id}"] details.use summary`);
  assert.equal(await page.textContent(`#models-list [data-model="${id}"] .predict-command`), 'fmnist predict --model ./page-cnn-3 shirt.png');
  assert.match((await page.textContent(`#models-list [data-model="${id}"] .onnx-snippet`)) ?? '', /InferenceSession\.create\('page-cnn-3\.onnx'\)[\s\S]*new ort\.Tensor\('float32', pixels, \[N, 1, 28, 28\]\)[\s\S]*session\.run\(\{ images \}\)/);
  await page.screenshot({ path: join(ARTIFACTS, 'web-laptop-models.png'), fullPage: true });

  // Five test images through the page's model...
  await page.click('#tab-try');
  const images: { pixels: Uint8Array; probabilities: number[] }[] = [];
  for (let i = 0; i < 5; i++) {
    const previous = await page.getAttribute('#preview', 'data-pixels');
    await page.click('#random-button');
    await page.waitForFunction(([before, model]) => document.getElementById('preview')?.dataset.pixels !== before && document.querySelector(`#predictions li[data-model="${model}"]`) !== null, [previous, id] as const, { timeout: 30_000 });
    await page.waitForFunction((model) => document.querySelector(`#predictions li[data-model="${model}"]`)?.getAttribute('data-probabilities') !== null, id);
    const pixels = Uint8Array.from(((await page.getAttribute('#preview', 'data-pixels')) ?? '').split(',').map(Number));
    const probabilities = JSON.parse((await page.getAttribute(`#predictions li[data-model="${id}"]`, 'data-probabilities')) ?? '[]') as number[];
    images.push({ pixels, probabilities });
  }
  // ... and through ONNX Runtime (Node) from the downloaded file.
  const { InferenceSession, Tensor } = await import('onnxruntime-node');
  const session = await InferenceSession.create(onnx.bytes);
  try {
    const input = Float32Array.from(images.flatMap((image) => Array.from(image.pixels, (value) => value / 255)));
    const output = (await session.run({ images: new Tensor('float32', input, [images.length, 1, 28, 28]) })).probabilities.data as Float32Array;
    images.forEach((image, i) => {
      const row = Array.from(output.subarray(i * 10, (i + 1) * 10));
      const argmax = (values: number[]) => values.indexOf(Math.max(...values));
      assert.equal(argmax(row), argmax(image.probabilities), `image ${i}: the same class`);
      row.forEach((p, c) => assert.ok(Math.abs(p - image.probabilities[c]) < 1e-4, `image ${i}, class ${c}: ONNX Runtime ${p}, page ${image.probabilities[c]}`));
    });
  } finally {
    await session.release();
  }
  assert.deepEqual(errors, []);
});

test('a model folder written by fmnist train, dropped onto the page, classifies as fmnist predict does', { timeout: 300_000 }, async (t) => {
  const setup = await withBrowser(t);
  if (setup === null) return;
  const { page, modelDir, errors } = setup;
  await page.click('#tab-models');
  // A drop of the folder's two files, as the browser hands them to the page.
  const files = ['model.json', 'model.safetensors'].map((name) => ({ name, bytes: Array.from(readFileSync(join(modelDir, name))) }));
  const transfer = await page.evaluateHandle((given) => {
    const data = new DataTransfer();
    for (const file of given) data.items.add(new File([Uint8Array.from(file.bytes)], file.name));
    return data;
  }, files);
  await page.dispatchEvent('#drop-zone', 'dragover', { dataTransfer: transfer });
  await page.dispatchEvent('#drop-zone', 'drop', { dataTransfer: transfer });
  await page.waitForFunction(() => document.getElementById('drop-status')?.textContent?.startsWith('Added dropped model'), null, { timeout: 30_000 });
  const id = (await keptId(page, 'dropped model')) ?? '';
  assert.match(id, /^kept:/);
  // A dropped file that is no model gets a sentence.
  const wrong = await page.evaluateHandle(() => {
    const data = new DataTransfer();
    data.items.add(new File(['{}'], 'model.json'));
    return data;
  });
  await page.dispatchEvent('#drop-zone', 'drop', { dataTransfer: wrong });
  await page.waitForFunction(() => document.getElementById('drop-status')?.classList.contains('error'), null, { timeout: 30_000 });
  assert.match((await page.textContent('#drop-status')) ?? '', /model\.json but no model\.safetensors/);

  await page.click('#tab-try');
  await page.click('#random-button');
  await page.waitForFunction((model) => document.querySelector(`#predictions li[data-model="${model}"]`) !== null, id, { timeout: 30_000 });
  const pixels = Uint8Array.from(((await page.getAttribute('#preview', 'data-pixels')) ?? '').split(',').map(Number));
  const inPage = JSON.parse((await page.getAttribute(`#predictions li[data-model="${id}"]`, 'data-probabilities')) ?? '[]') as number[];
  // What `fmnist predict --model DIR --backend wasm --threads 1 --no-preprocess --top 10 image.npy` runs (its command's action, in this process).
  const image = join(tempDir(), 'image.npy');
  saveNpy(image, { dtype: 'uint8', shape: [1, 28, 28], data: pixels });
  const kernels = await loadWasmKernels({ threads: 1 });
  let predicted;
  try {
    predicted = await predictFiles(await loadClassifiers(modelDir, kernels), [image], { preprocess: false, top: 10 });
  } finally {
    kernels.close();
  }
  assert.ok('images' in predicted[0]);
  const [{ top }] = predicted[0].images[0].models;
  assert.equal(top.length, 10);
  for (const { class: name, probability } of top) {
    const c = CLASS_NAMES.indexOf(name as (typeof CLASS_NAMES)[number]);
    assert.ok(Math.abs(inPage[c] - probability) < 1e-6, `${name}: page ${inPage[c]}, fmnist predict ${probability}`);
  }
  assert.deepEqual(errors, []);
});

test('the camera: the centre of its picture, brought to 28x28, gets every model\'s probabilities', { timeout: 300_000 }, async (t) => {
  const setup = await withBrowser(t);
  if (setup === null) return;
  const { page, errors } = setup;
  await page.click('#tab-try');
  await page.click('#camera-button');
  await page.waitForFunction(() => document.getElementById('preview-note')?.textContent?.includes('the centre of the camera\'s picture'), null, { timeout: 30_000 });
  const models = await page.$$eval('#models-list .model-card', (cards) => cards.length);
  await page.waitForFunction((count) => document.querySelectorAll('#predictions li[data-probabilities]').length === count, models, { timeout: 30_000 });
  assert.equal(await page.isVisible('#camera'), true);
  const pixels = ((await page.getAttribute('#preview', 'data-pixels')) ?? '').split(',').map(Number);
  assert.equal(pixels.length, 784);
  assert.ok(pixels.some((value) => value > 100), 'the camera\'s pattern is in the image');
  for (const probabilities of await page.$$eval('#predictions li[data-probabilities]', (items) => items.map((item) => JSON.parse(item.getAttribute('data-probabilities')!) as number[]))) {
    assert.ok(Math.abs(probabilities.reduce((a, b) => a + b, 0) - 1) < 1e-5);
  }
  // The picture moves: the answers follow it.
  const seen = await page.getAttribute('#preview', 'data-pixels');
  await page.waitForFunction((before) => document.getElementById('preview')?.dataset.pixels !== before, seen, { timeout: 10_000 });
  await page.screenshot({ path: join(ARTIFACTS, 'web-laptop-camera.png') });
  await page.click('#camera-button');
  assert.equal(await page.isVisible('#camera'), false);
  assert.deepEqual(errors, []);
});

test('at 390x844 no tab scrolls sideways', { timeout: 300_000 }, async (t) => {
  const setup = await withBrowser(t);
  if (setup === null) return;
  const { page, errors } = setup;
  await page.setViewportSize({ width: 390, height: 844 });
  for (const tab of ['train', 'try', 'inside', 'look', 'models']) {
    await page.click(`#tab-${tab}`);
    // Charts re-embed as their boxes change width.
    await page.waitForTimeout(800);
    assert.ok((await horizontalOverflow(page)) <= 0, `${tab}: the page is ${await horizontalOverflow(page)} px wider than the window`);
    await page.screenshot({ path: join(ARTIFACTS, `web-phone-${tab}.png`), fullPage: true });
  }
  assert.ok((await page.$$('#look .chart svg')).length >= 4, 'Look shows a run');
  assert.deepEqual(errors, []);
});

test('a long visit holds its memory: 5,000 classifications in the page, strokes and test images, through every model', { timeout: 300_000 }, async (t) => {
  const setup = await withBrowser(t);
  if (setup === null) return;
  const { page, errors } = setup;
  await page.click('#tab-try');
  await page.click('#random-button');
  await page.waitForFunction(() => document.getElementById('preview')?.dataset.pixels !== undefined);
  // (No functions declared inside: tsx would wrap them in a helper the page does not have.)
  const result = await page.evaluate(async () => {
    type Model = { label: string; classify(pixels: Uint8Array, count: number): Promise<Float32Array> };
    const fmnist = (window as unknown as { fmnistPage: { memory(): Promise<{ liveBytes: number; memoryBytes: number } | null>; models(): Model[] } }).fmnistPage;
    const models = fmnist.models();
    const testImage = Uint8Array.from(document.getElementById('preview')!.dataset.pixels!.split(',').map(Number));
    const usage: { after: number; liveBytes: number; memoryBytes: number }[] = [];
    const problems: string[] = [];
    let seed = 1;
    for (let i = 1; i <= 5000; i++) {
      let image = testImage;
      if (i % 2 === 1) {
        // A stroke: a bright bar of random place, length and direction, as a drawing brought to 28x28 looks.
        image = new Uint8Array(784);
        const line: number[] = [];
        for (let k = 0; k < 4; k++) line.push((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
        for (let s = 0; s < 30; s++) {
          const x = Math.round(line[0] * 28 + (line[2] * 2 - 1) * s);
          const y = Math.round(line[1] * 28 + (line[3] * 2 - 1) * s);
          if (x >= 0 && x < 28 && y >= 0 && y < 28) image[y * 28 + x] = 255;
        }
      }
      const model = models[i % models.length];
      const probabilities = await model.classify(image, 1);
      const sum = probabilities.reduce((a, b) => a + b, 0);
      if (!(Math.abs(sum - 1) < 1e-4)) problems.push(`${model.label}, classification ${i}: probabilities sum to ${sum}`);
      if (i % 1000 === 0) usage.push({ after: i, ...(await fmnist.memory())! });
    }
    return { usage, problems: problems.slice(0, 5), models: models.length };
  });
  assert.deepEqual(result.problems, []);
  assert.ok(result.models >= 4, `${result.models} models`);
  const [warm, ...later] = result.usage;
  // After the first thousand, neither the tensors held nor the WebAssembly memory grows.
  for (const point of later) {
    assert.equal(point.liveBytes, warm.liveBytes, `tensors held after ${point.after} classifications: ${point.liveBytes} bytes, after ${warm.after}: ${warm.liveBytes}`);
    assert.equal(point.memoryBytes, warm.memoryBytes, `WebAssembly memory after ${point.after} classifications`);
  }
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
    assert.equal(await page.textContent('#cli-command'), 'fmnist train cnn --epochs 1 --batch-size 32 --lr 0.01 --validation-fraction 0.05 --train-limit 2000 --seed 11 --backend webgpu --channels 4,4,8,8,8 --features 16');
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
