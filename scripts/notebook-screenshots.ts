/**
 * Screenshots of an executed notebook rendered to HTML (`npm run notebook -- --execute` writes
 * both into runs/notebook-<mode>/), taken with headless Chromium, for docs/notebook.md (kept in
 * docs/notebook/, left out of the npm package):
 *
 *   node --import tsx scripts/notebook-screenshots.ts runs/notebook-quick docs/notebook
 *   node --import tsx scripts/notebook-screenshots.ts runs/notebook-full docs/notebook --prefix full- results
 *
 * (the second: only the pictures named, each file name prefixed).
 *
 * Each picture spans a run of the notebook's cells, named by their ids (the executed .ipynb
 * beside the HTML gives each HTML cell its id: nbconvert writes them in the same order).
 */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { chromium } from 'playwright-core';

const CHROMIUM = '/usr/bin/chromium';

/** <name>.png: the cells from `first` to `last`, both included. */
const SHOTS = [
  { name: 'data', first: 'data-grid', last: 'data-counts' },
  { name: 'mlp', first: 'check-run', last: 'mlp-train' },
  { name: 'cnn-training', first: 'cnn-train', last: 'cnn-train' },
  { name: 'results', first: 'results-intro', last: 'results-side-by-side' },
  { name: 'results-mlp', first: 'results-mlp-intro', last: 'results-mlp' },
  { name: 'results-cnn', first: 'results-cnn-intro', last: 'results-cnn' },
  { name: 'results-cnn-features-mlp', first: 'results-cnn-features-mlp-intro', last: 'results-cnn-features-mlp' },
] as const;

async function main(runDir: string, outDir: string, prefix: string, names: readonly string[]): Promise<void> {
  const ids = (JSON.parse(readFileSync(join(runDir, 'fashion-mnist.ipynb'), 'utf8')) as { cells: { id: string }[] }).cells.map((cell) => cell.id);
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run'] });
  try {
    const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
    // A busy machine takes a while to lay out a page of some hundred pictures.
    page.setDefaultTimeout(300_000);
    // The page asks a CDN for MathJax and RequireJS; nothing here needs them.
    await page.route(/^https?:/, (route) => route.abort());
    await page.goto(`file://${resolve(runDir, 'fashion-mnist.html')}`, { waitUntil: 'load' });
    const cells = page.locator('.jp-Cell.jp-Notebook-cell');
    const count = await cells.count();
    if (count !== ids.length) throw new Error(`the HTML has ${count} cells, the notebook ${ids.length}: render the HTML from this notebook`);
    for (const shot of SHOTS.filter((s) => names.length === 0 || names.includes(s.name))) {
      const [first, last] = [ids.indexOf(shot.first), ids.indexOf(shot.last)];
      if (first < 0 || last < first) throw new Error(`no cells ${shot.first} to ${shot.last} in the notebook`);
      const top = (await cells.nth(first).boundingBox())!;
      const bottom = (await cells.nth(last).boundingBox())!;
      const path = join(outDir, `${prefix}${shot.name}.png`);
      await page.screenshot({ path, fullPage: true, clip: { x: 0, y: top.y, width: 1100, height: bottom.y + bottom.height - top.y } });
      console.log(`${path}: cells ${shot.first} to ${shot.last}`);
    }
  } finally {
    await browser.close();
  }
}

const { values, positionals } = parseArgs({ options: { prefix: { type: 'string', default: '' } }, allowPositionals: true });
const [runDir, outDir, ...names] = positionals;
const unknown = names.filter((name) => !SHOTS.some((shot) => shot.name === name));
if (!runDir || !outDir || unknown.length > 0) {
  console.error(
    `usage: node --import tsx scripts/notebook-screenshots.ts RUN_DIR OUT_DIR [--prefix P] [${SHOTS.map((shot) => shot.name).join('|')}...] ` +
      '(RUN_DIR: where npm run notebook -- --execute wrote fashion-mnist.ipynb and .html)',
  );
  process.exit(1);
}
await main(runDir, outDir, values.prefix, names);
