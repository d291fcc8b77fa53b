/**
 * Training in the web app against the same training on Node's WebAssembly backend
 * (`npm run bench -- browser`): `fmnist app`'s server and the page in headless Chromium
 * (playwright-core, Debian's chromium), the page driven as a person drives it; Node runs the
 * same job (src/runs/job-core.ts) on the same kernels. Both time one epoch from its fourth batch
 * to its last (validation excluded), as `npm run bench -- train` does, on 1 and 2 threads; the
 * two take turns for three rounds and each prints its median. One JSON line per model, thread
 * count and runtime, then the ratio of each round's two epochs.
 */
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { chromium, type Page } from 'playwright-core';
import { startAppServer } from '../src/app/server.ts';
import { loadTestSet, loadTrainingSet } from '../src/data/load.ts';
import { locateData } from '../src/data/locate.ts';
import { DEFAULT_CNN_CONFIG, DEFAULT_MLP_CONFIG } from '../src/runs/configs.ts';
import { loadWasmKernels } from '../src/kernels/wasm/node.ts';
import { forkStreams } from '../src/random/streams.ts';
import { imageJobData, recipe, trainJob, type JobSpec } from '../src/runs/job-core.ts';
import { ensureWebBuild } from '../scripts/build-web.ts';
import { median } from './training-step.ts';

const CHROMIUM = '/usr/bin/chromium';
/** 2 threads is the comparison asked for; 1 thread shows the same without the pool's hand-offs, which a busy machine upsets most. */
const THREAD_COUNTS = [1, 2];
const ROUNDS = 3;
/** Batches at the start of the epoch left out of the timing (warm-up). */
const WARM_BATCHES = 3;

/**
 * The two configurations: the MLP on every training image, and the reference CNN (channels
 * 32-32-64-64-128, 256 features, dropout 0.25 and 0.5, no augmentation) on 43 batches, as
 * `npm run bench -- train` sizes them. One epoch each, batch 64.
 */
const JOBS: { name: 'mlp' | 'cnn'; spec: JobSpec }[] = [
  { name: 'mlp', spec: { kind: 'mlp', config: { ...DEFAULT_MLP_CONFIG, epochs: 1, backend: 'wasm' } } },
  {
    name: 'cnn',
    spec: { kind: 'cnn', config: { ...DEFAULT_CNN_CONFIG, epochs: 1, trainLimit: 64 * 43, convDropout: 0.25, featureDropout: 0.5, augmentShift: 0, backend: 'wasm' } },
  },
];

/** Images per second of one epoch of `spec` on Node's wasm backend, timed as the page times it. */
async function nodeSpeed(spec: JobSpec, threads: number, loaded: Parameters<typeof imageJobData>[2]['loaded']): Promise<number> {
  const kernels = await loadWasmKernels({ threads });
  try {
    const streams = forkStreams(spec.config.seed);
    const data = imageJobData(spec.config, streams, { loaded });
    const plan = recipe(spec, data, streams);
    let warmedAt = 0;
    let speed = 0;
    await trainJob(spec, plan, streams, {
      kernels,
      checkpoint: { load: () => null, save: () => {} },
      onProgress: (event) => {
        if (event.type !== 'batch') return;
        if (event.batch === WARM_BATCHES) warmedAt = performance.now();
        if (event.batch === event.batches) speed = ((event.batches - WARM_BATCHES) * spec.config.batchSize) / ((performance.now() - warmedAt) / 1000);
      },
    });
    return speed;
  } finally {
    kernels.close();
  }
}

/**
 * Fills the Train form as a person would, trains, and reads the epoch's speed the page shows.
 * `watch`: the Inside tab is shown while it trains, so the worker sends the weights every few
 * hundred steps and the page redraws the layers, filters and histograms from them.
 */
async function pageSpeed(page: Page, spec: JobSpec, threads: number, watch = false): Promise<number> {
  await page.click('#tab-train');
  await page.check(`input[name="kind"][value="${spec.kind}"]`);
  const config = spec.config;
  const fields: Record<string, string> = {
    '#learning-rate': String(config.learningRate),
    '#epochs': String(config.epochs),
    '#batch-size': String(config.batchSize),
    '#train-limit': config.trainLimit === null ? '' : String(config.trainLimit),
    '#seed': String(config.seed),
  };
  if (spec.kind === 'mlp') Object.assign(fields, { '#hidden': String(spec.config.hidden), '#dropout': String(spec.config.dropout) });
  else if (spec.kind === 'cnn') {
    const cnn = spec.config;
    Object.assign(fields, {
      '#channels': cnn.channels.join(','),
      '#features': String(cnn.features),
      '#conv-dropout': String(cnn.convDropout),
      '#feature-dropout': String(cnn.featureDropout),
      '#augment-shift': String(cnn.augmentShift),
    });
  }
  for (const [selector, value] of Object.entries(fields)) await page.fill(selector, value);
  await page.selectOption('#threads', String(threads));
  await page.evaluate(() => delete document.getElementById('speed')!.dataset.imagesPerSecond);
  await page.click('#train-button');
  if (watch) await page.click('#tab-inside');
  await page.waitForFunction(() => !document.getElementById('results-card')!.hidden, null, { timeout: 600_000, polling: 500 });
  return Number(await page.getAttribute('#speed', 'data-images-per-second'));
}

export async function browserBench(emit: (record: object) => void): Promise<void> {
  if (!existsSync(CHROMIUM)) {
    console.error(`bench browser: ${CHROMIUM} is missing (apt-get install chromium); skipped`);
    return;
  }
  await ensureWebBuild((message) => console.error(`bench browser: ${message}`));
  const location = await locateData({ download: false });
  const loaded = { location, training: loadTrainingSet(location.dir), loadTest: () => loadTestSet(location.dir) };
  const server = await startAppServer({ port: 0, data: { dataDir: location.dir } });
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  try {
    const page = await browser.newPage();
    await page.goto(server.url);
    await page.waitForFunction(() => crossOriginIsolated && !(document.getElementById('train-button') as HTMLButtonElement).disabled, null, { timeout: 120_000 });
    const threadCounts = THREAD_COUNTS.filter((threads) => threads <= availableParallelism());
    const cases = threadCounts.flatMap((threads) => JOBS.map((job) => ({ ...job, threads, page: [] as number[], node: [] as number[] })));
    for (let round = 0; round < ROUNDS; round++) {
      for (const entry of cases) {
        entry.page.push(await pageSpeed(page, entry.spec, entry.threads));
        entry.node.push(await nodeSpeed(entry.spec, entry.threads, loaded));
      }
    }
    const rounded = (values: number[]) => values.map((value) => Math.round(value));
    for (const { name, threads, page: inPage, node } of cases) {
      emit({ bench: 'browser', model: name, runtime: 'chromium', threads, imagesPerSecond: Math.round(median(inPage)), each: rounded(inPage) });
      emit({ bench: 'browser', model: name, runtime: 'node', threads, imagesPerSecond: Math.round(median(node)), each: rounded(node) });
      const ratios = inPage.map((value, i) => Number((value / node[i]).toFixed(2)));
      emit({ bench: 'browser-ratio', model: name, threads, pageOverNode: median(ratios), each: ratios });
    }
  } finally {
    await browser.close();
    await server.close();
  }
}

/**
 * What looking inside costs the training (`npm run bench -- inside`): one epoch in the page with
 * the Inside tab hidden (no weights sent) and with it shown on the run being trained (the weights
 * sent every few hundred steps, at most once a second and at least every five, and the page
 * redrawing each layer's output for a test image, the filters and the histograms from them), in
 * turns for ROUNDS rounds, on 1 and 2 threads. The MLP on every training image, and the reference
 * CNN on three times the batches of `bench -- browser` so that its epoch holds several snapshots.
 * Prints each case's median images/s, the redraws made while watching, and the slowdown
 * (1 - watched / unwatched, each round's pair and their median); the goal is under 0.05.
 * `--quick` checks that it runs (a tenth of the images, one round, one thread): no measure.
 */
export async function insideBench(emit: (record: object) => void, { quick = false } = {}): Promise<void> {
  if (!existsSync(CHROMIUM)) {
    console.error(`bench inside: ${CHROMIUM} is missing (apt-get install chromium); skipped`);
    return;
  }
  await ensureWebBuild((message) => console.error(`bench inside: ${message}`));
  const location = await locateData({ download: false });
  const server = await startAppServer({ port: 0, data: { dataDir: location.dir } });
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  // --quick (a check that the benchmark runs, not a measure): a tenth of the images, one round, one thread.
  const trainLimit = (name: string) => (quick ? (name === 'cnn' ? 640 : 4800) : name === 'cnn' ? 64 * 43 * 3 : null);
  const jobs = JOBS.map((job) => ({ ...job, spec: { ...job.spec, config: { ...job.spec.config, trainLimit: trainLimit(job.name) } } as JobSpec }));
  const rounds = quick ? 1 : ROUNDS;
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    await page.goto(server.url);
    await page.waitForFunction(() => crossOriginIsolated && !(document.getElementById('train-button') as HTMLButtonElement).disabled, null, { timeout: 120_000 });
    // The image whose layers are drawn.
    await page.click('#tab-try');
    await page.click('#random-button');
    const redraws = () => page.evaluate(() => Number(document.getElementById('panel-inside')!.dataset.redraws ?? 0));
    const threadCounts = quick ? [1] : THREAD_COUNTS.filter((threads) => threads <= availableParallelism());
    for (const threads of threadCounts) {
      for (const { name, spec } of jobs) {
        const hidden: number[] = [];
        const watched: number[] = [];
        const drawn: number[] = [];
        for (let round = 0; round < rounds; round++) {
          hidden.push(await pageSpeed(page, spec, threads, false));
          const before = await redraws();
          watched.push(await pageSpeed(page, spec, threads, true));
          drawn.push((await redraws()) - before);
        }
        const rounded = (values: number[]) => values.map((value) => Math.round(value));
        emit({ bench: 'inside', model: name, threads, watching: false, imagesPerSecond: Math.round(median(hidden)), each: rounded(hidden) });
        emit({ bench: 'inside', model: name, threads, watching: true, imagesPerSecond: Math.round(median(watched)), each: rounded(watched), redraws: drawn });
        const slowdowns = watched.map((value, i) => Number((1 - value / hidden[i]).toFixed(3)));
        emit({ bench: 'inside-slowdown', model: name, threads, slowdown: Number((1 - median(watched) / median(hidden)).toFixed(3)), each: slowdowns });
      }
    }
  } finally {
    await browser.close();
    await server.close();
  }
}
