import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { chromium } from 'playwright-core';
import { runPipeline } from '../src/runs/pipeline.ts';
import { runCli } from './helpers/cli.ts';
import { tempDir } from './helpers/idx-files.ts';

// A tiny real pipeline run, on the real data, whose report every test below reads.
const overrides = {
  mlp: { trainLimit: 1000, epochs: 2, hidden: 16 },
  cnn: { trainLimit: 1000, epochs: 2, channels: [4, 4, 8, 8, 8], features: 16, convDropout: 0, featureDropout: 0, learningRate: 0.003 },
  featuresMlp: { epochs: 3, hidden: 16, dropout: 0, learningRate: 0.01 },
};
const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = join(import.meta.dirname, '..', 'test-artifacts');
const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47];

const EXPECTED_CHARTS = [
  'summary-test-accuracy',
  'summary-training-time',
  ...['mlp', 'cnn', 'cnn-features-mlp'].flatMap((model) =>
    ['loss', 'accuracy', 'confusion', 'confusion-normalised', 'samples', 'mistakes'].map((chart) => `${model}-${chart}`),
  ),
  'cnn-features-pca',
];

let pipelineDir: string | undefined;
async function pipelineRun(): Promise<string> {
  if (pipelineDir === undefined) {
    const dir = join(tempDir(), 'pipeline');
    await runPipeline({ seed: 11, overrides }, { outDir: dir });
    pipelineDir = dir;
  }
  return pipelineDir;
}

test('fmnist report writes every chart as SVG and PNG and one self-contained report.html', { timeout: 300_000 }, async () => {
  const dir = await pipelineRun();
  const result = runCli(['report', dir]);
  assert.equal(result.status, 0, result.stderr);
  assert.match(result.stdout, /report: .*report\.html/);

  const files = readdirSync(join(dir, 'charts'));
  for (const chart of EXPECTED_CHARTS) {
    assert.ok(files.includes(`${chart}.svg`), `${chart}.svg written`);
    assert.ok(files.includes(`${chart}.png`), `${chart}.png written`);
    assert.match(readFileSync(join(dir, 'charts', `${chart}.svg`), 'utf8'), /^<svg[^>]*xmlns="http:\/\/www.w3.org\/2000\/svg"/);
    const png = readFileSync(join(dir, 'charts', `${chart}.png`));
    assert.deepEqual([...png.subarray(0, 4)], PNG_SIGNATURE, `${chart}.png is a PNG`);
    assert.ok(png.length > 2000, `${chart}.png has content (${png.length} bytes)`);
  }
  assert.equal(files.length, EXPECTED_CHARTS.length * 2, `no other files: ${files.join(', ')}`);

  const html = readFileSync(join(dir, 'report.html'), 'utf8');
  // Self-contained: every image is inlined and nothing is loaded from elsewhere.
  assert.doesNotMatch(html, /<script|<link|@import|url\(/i);
  const sources = [...html.matchAll(/<img[^>]*\ssrc="([^"]*)"/g)].map((match) => match[1]);
  assert.ok(sources.length > 100, `${sources.length} images`);
  assert.ok(sources.every((source) => source.startsWith('data:image/')), 'every image is a data URI');
  for (const heading of ['Summary', 'MLP on pixels', 'CNN', 'MLP on CNN features', 'Classification report (test set)', 'Sample test predictions', 'Most confident mistakes']) {
    assert.ok(html.includes(`>${heading}</h`), `report has a "${heading}" heading`);
  }
  // The classification report table holds each class and the recorded test accuracy.
  const metrics = JSON.parse(readFileSync(join(dir, 'cnn', 'metrics.json'), 'utf8'));
  assert.ok(html.includes(`${(metrics.test.accuracy * 100).toFixed(2)}%`), 'the CNN test accuracy is shown');
  for (const name of ['T-shirt/top', 'Ankle boot']) assert.ok(html.includes(`<td>${name}</td>`));
});

test('report.html opens in headless Chromium without errors, every image loaded, at laptop and phone sizes', { timeout: 300_000 }, async (t) => {
  if (!existsSync(CHROMIUM)) {
    // CI installs Debian's chromium and sets FMNIST_REQUIRE_BROWSER, so there this fails instead.
    if (process.env.FMNIST_REQUIRE_BROWSER === '1') assert.fail(`${CHROMIUM} is missing; install Debian's chromium package`);
    t.skip(`${CHROMIUM} is not installed (apt-get install chromium)`);
    return;
  }
  const dir = await pipelineRun();
  if (!existsSync(join(dir, 'report.html'))) assert.equal(runCli(['report', dir]).status, 0);
  mkdirSync(ARTIFACTS, { recursive: true });
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  try {
    for (const [width, height, name] of [[1280, 800, 'laptop'], [390, 844, 'phone']] as const) {
      const page = await browser.newPage({ viewport: { width, height } });
      const errors: string[] = [];
      const requests: string[] = [];
      page.on('console', (message) => {
        if (message.type() === 'error') errors.push(message.text());
      });
      page.on('pageerror', (error) => errors.push(String(error)));
      page.on('request', (request) => {
        if (!/^(file|data):/.test(request.url())) requests.push(request.url());
      });
      await page.goto(`file://${join(dir, 'report.html')}`, { waitUntil: 'load' });
      const images = await page.$$eval('img', (elements) =>
        elements.map((element) => ({ alt: element.alt, loaded: element.complete && element.naturalWidth > 0, width: element.getBoundingClientRect().width })),
      );
      assert.deepEqual(errors, [], `${name}: no console errors`);
      assert.deepEqual(requests, [], `${name}: nothing fetched from the network`);
      assert.ok(images.length > 100, `${name}: ${images.length} images`);
      assert.deepEqual(images.filter((image) => !image.loaded).map((image) => image.alt), [], `${name}: every image loaded`);
      // Readable on the screen: nothing wider than the window, so no sideways scrolling of the page.
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert.ok(overflow <= 0, `${name}: the page is ${overflow} px wider than the window`);
      await page.screenshot({ path: join(ARTIFACTS, `report-${name}.png`), fullPage: false });
      await page.close();
    }
  } finally {
    await browser.close();
  }
});

test('fmnist train writes the report of its run and prints where it is', { timeout: 300_000 }, () => {
  const out = join(tempDir(), 'mlp');
  const result = runCli(['train', 'mlp', '--train-limit', '600', '--epochs', '2', '--hidden', '8', '--out', out]);
  assert.equal(result.status, 0, result.stderr);
  assert.match(result.stdout, /report: .*report\.html/);
  const html = readFileSync(join(out, 'report.html'), 'utf8');
  assert.ok(html.includes('>MLP on pixels</h2>'));
  assert.ok(existsSync(join(out, 'charts', 'model-confusion.png')));
  assert.ok(existsSync(join(out, 'test_probabilities.npy')));
});

test('fmnist report on a folder without a finished run says so in one line', () => {
  const result = runCli(['report', tempDir()]);
  assert.equal(result.status, 1);
  assert.match(result.stderr, /holds no finished run/);
  assert.doesNotMatch(result.stderr, /^\s+at /m);
});
