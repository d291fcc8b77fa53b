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

/** Fills the Train form as a person would, trains, and reads the epoch's speed the page shows. */
async function pageSpeed(page: Page, spec: JobSpec, threads: number): Promise<number> {
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
  await page.waitForSelector('#results-card:not([hidden])', { timeout: 600_000 });
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
