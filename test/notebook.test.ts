/**
 * The notebook (notebooks/fashion-mnist.ipynb): its MLP written by hand against the library's,
 * run here from the notebook's own cells; and the whole notebook run headless in quick mode by
 * Jupyter, where Jupyter is installed (CI installs it and sets FMNIST_REQUIRE_JUPYTER).
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { loadTestSet, loadTrainingSet } from '../src/data/load.ts';
import { locateData } from '../src/data/locate.ts';
import type { LoadedData } from '../src/data/split.ts';
import { loadKernels, type Kernels } from '../src/kernels/index.ts';
import { pieces } from '../src/pieces.ts';
import { imageJobData } from '../src/runs/job-core.ts';
import { RunFolder } from '../src/runs/run-folder.ts';
import type { PipelineSummary } from '../src/runs/pipeline.ts';
import type { MlpConfig } from '../src/runs/configs.ts';
import { forkStreams } from '../src/random/streams.ts';
import { executeNotebook, findJupyter, hasJupyterCommand, kernelInstalled, libraryBuilt, NOTEBOOK } from '../scripts/notebook.ts';

interface Cell {
  id: string;
  cell_type: 'code' | 'markdown';
  metadata: { tags?: string[] };
  source: string[];
  outputs?: { output_type: string; name?: string; text?: string[]; data?: Record<string, string | string[]> }[];
}

const readCells = (path: string): Cell[] => (JSON.parse(readFileSync(path, 'utf8')) as { cells: Cell[] }).cells;
const text = (value: string | string[] | undefined): string => (Array.isArray(value) ? value.join('') : (value ?? ''));

/** The compare function of section 3 with everything it calls: the cells tagged from-scratch, as a module over the library's sources. */
async function fromScratchCells(): Promise<{ compareWithLibrary: CompareWithLibrary; cleanUp: () => void }> {
  const cells = readCells(NOTEBOOK).filter((cell) => cell.metadata.tags?.includes('from-scratch'));
  assert.ok(cells.length >= 4, 'the notebook tags its from-scratch cells');
  const library = pathToFileURL(fileURLToPath(new URL('../src/index.ts', import.meta.url))).href;
  const source = [
    `import { Rng, Sequential, Sgd, mlpArchitecture } from '${library}';`,
    `import type { Kernels } from '${library}';`,
    ...cells.map((cell) => text(cell.source)),
    'export { compareWithLibrary };',
  ].join('\n\n');
  const dir = mkdtempSync(join(tmpdir(), 'fmnist-notebook-cells-'));
  const file = join(dir, 'from-scratch.ts');
  writeFileSync(file, source);
  const module = (await import(pathToFileURL(file).href)) as { compareWithLibrary: CompareWithLibrary };
  return { compareWithLibrary: module.compareWithLibrary, cleanUp: () => rmSync(dir, { recursive: true, force: true }) };
}

type CompareWithLibrary = (
  engine: Kernels,
  x: Float32Array,
  labels: Uint8Array,
  hidden: number,
  seed: number,
  learningRate: number,
) => Promise<{ loss: number; libraryLoss: number; differences: { parameter: string; gradient: number; updated: number }[] }>;

test("the notebook's MLP written by hand gives the library's loss, gradients and SGD step on a batch", async () => {
  const { compareWithLibrary, cleanUp } = await fromScratchCells();
  try {
    const images = loadTestSet((await locateData({ download: false })).dir).data;
    const batch = 32;
    const x = Float32Array.from(images.pixels.subarray(0, batch * 784), (pixel) => pixel / 255);
    const labels = images.labels.slice(0, batch);
    for (const backend of ['js', 'auto'] as const) {
      const engine = await loadKernels(backend);
      const check = await compareWithLibrary(engine, x, labels, 32, 7, 0.1);
      assert.ok(Math.abs(check.loss - check.libraryLoss) / check.libraryLoss < 1e-6, `${engine.description}: loss ${check.loss} by hand, ${check.libraryLoss} by the library`);
      assert.deepEqual(
        check.differences.map((d) => d.parameter),
        ['w1', 'b1', 'w2', 'b2'],
      );
      for (const d of check.differences) {
        assert.ok(d.gradient < 1e-5, `${engine.description}: gradient of ${d.parameter} differs by ${d.gradient}`);
        assert.ok(d.updated < 1e-5, `${engine.description}: ${d.parameter} after a step differs by ${d.updated}`);
      }
    }
  } finally {
    cleanUp();
  }
});

test("pieces.split is the split a job of the same seed trains and validates on", async () => {
  const location = await locateData({ download: false });
  const loaded: LoadedData = { location, training: loadTrainingSet(location.dir), loadTest: (options) => loadTestSet(location.dir, options) };
  for (const settings of [
    { seed: 42, validationFraction: 0.2, trainLimit: null },
    { seed: 3, validationFraction: 0.1, trainLimit: 5000 },
  ]) {
    const job = imageJobData(settings, forkStreams(settings.seed), { loaded });
    assert.equal(job.type, 'images');
    if (job.type === 'images') assert.deepEqual(pieces.split(loaded.training.data.labels, settings), job.images.indices);
  }
});

/** Jupyter and the kernel, or null (the test skipped) where they are missing and not required. */
function jupyterOrSkip(t: TestContext): string | null {
  const jupyter = findJupyter();
  const missing = !jupyter || !hasJupyterCommand(jupyter, 'nbconvert') ? "Jupyter's nbconvert (apt-get install jupyter-nbconvert jupyter-notebook python3-ipykernel)" : !kernelInstalled() ? 'the notebook kernel (npm ci --prefix notebooks)' : null;
  if (!missing) return jupyter;
  // CI installs both and sets FMNIST_REQUIRE_JUPYTER, so there this fails instead.
  if (process.env.FMNIST_REQUIRE_JUPYTER === '1') assert.fail(`${missing} is missing`);
  t.skip(`${missing} is not installed`);
  return null;
}

/** The charts section 7 shows: the summary's and every model's. */
const SECTION_7_CHARTS = [
  'summary-test-accuracy',
  'summary-training-time',
  ...['mlp', 'cnn', 'cnn-features-mlp'].flatMap((slug) => ['loss', 'accuracy', 'confusion', 'confusion-normalised', 'samples', 'mistakes'].map((chart) => `${slug}-${chart}`)),
  'cnn-features-pca',
];

/** The SVG pictures a cell shows, by name (each is shown as an image named after its chart). */
function pictures(cell: Cell): Map<string, string> {
  const found = new Map<string, string>();
  for (const output of cell.outputs ?? []) {
    for (const match of text(output.data?.['text/html']).matchAll(/<img alt="([^"]+)" src="data:image\/svg\+xml;base64,([^"]+)"/g)) found.set(match[1], match[2]);
  }
  return found;
}

const printedBy = (cells: readonly Cell[]): string =>
  cells.flatMap((cell) => (cell.outputs ?? []).filter((output) => output.name === 'stdout').map((output) => text(output.text))).join('');

/** The learning rate a person types into section 3's cell before running the notebook from there again. */
const CHANGED_LEARNING_RATE = 0.01;

/**
 * The notebook with what a person does after a first run inserted after the MLP's training: the
 * learning-rate cell changed and run again, then the training cell run again, in the same
 * kernel; the rest of the notebook then runs after them, as "run all below" would.
 */
function withLearningRateChanged(cells: Cell[]): Cell[] {
  const byId = (id: string): Cell => cells.find((cell) => cell.id === id) ?? assert.fail(`the notebook has no cell ${id}`);
  const learningRate = byId('mlp-learning-rate');
  const changed = text(learningRate.source).replace(/const MLP_LEARNING_RATE = [^;]+;/, `const MLP_LEARNING_RATE = ${CHANGED_LEARNING_RATE};`);
  assert.notEqual(changed, text(learningRate.source), 'section 3 sets the learning rate in a cell of its own (const MLP_LEARNING_RATE = ...)');
  const at = cells.indexOf(byId('mlp-train')) + 1;
  const again = [
    { ...learningRate, id: 'again-mlp-learning-rate', source: [changed] },
    { ...byId('mlp-train'), id: 'again-mlp-train' },
  ];
  return [...cells.slice(0, at), ...again, ...cells.slice(at)];
}

test("the notebook runs top to bottom in quick mode, shows every chart of section 7 and each model's test accuracy, and trains the MLP again when its learning rate changes", { timeout: 20 * 60_000 }, (t) => {
  const jupyter = jupyterOrSkip(t);
  if (!jupyter) return;
  assert.ok(libraryBuilt(), 'the notebook imports the built library: npm run build');
  const dir = mkdtempSync(join(tmpdir(), 'fmnist-notebook-'));
  try {
    // The notebook's copy sits in a notebooks/ folder beside a link to the library's build, so its ../dist is the library.
    const notebook = join(dir, 'notebooks', 'fashion-mnist.ipynb');
    mkdirSync(dirname(notebook));
    symlinkSync(fileURLToPath(new URL('../dist', import.meta.url)), join(dir, 'dist'));
    const original = JSON.parse(readFileSync(NOTEBOOK, 'utf8')) as { cells: Cell[] };
    writeFileSync(notebook, JSON.stringify({ ...original, cells: withLearningRateChanged(original.cells) }));

    const runDir = join(dir, 'run');
    const result = executeNotebook(jupyter, { notebook, outDir: join(dir, 'executed'), env: { FMNIST_NOTEBOOK_MODE: 'quick', FMNIST_NOTEBOOK_OUT: runDir }, timeoutSeconds: 15 * 60 });
    assert.equal(result.error, null, `a cell failed:\n${result.error}`);
    const cells = readCells(result.path);
    const code = cells.filter((cell) => cell.cell_type === 'code');
    for (const cell of code) {
      assert.ok(cell.outputs?.every((output) => output.output_type !== 'error'), `cell ${cell.id} ended in an error`);
    }

    const results = code.filter((cell) => cell.id.startsWith('results-'));
    const shown = new Set(results.flatMap((cell) => [...pictures(cell).keys()]));
    assert.deepEqual(
      SECTION_7_CHARTS.filter((chart) => !shown.has(chart)),
      [],
      'charts missing from section 7',
    );
    // Each model's test accuracy, printed as the run measured it.
    const summary = JSON.parse(readFileSync(join(runDir, 'summary.json'), 'utf8')) as PipelineSummary;
    const printed = printedBy(results);
    for (const [model, step] of [
      ['MLP on pixels', summary.models.mlp],
      ['CNN', summary.models.cnn],
      ['MLP on CNN features', summary.models.cnnFeaturesMlp],
    ] as const) {
      assert.ok(printed.includes(`test accuracy of ${model}: ${(step.testAccuracy * 100).toFixed(2)}%`), `the test accuracy of ${model}, ${step.testAccuracy}, is not printed in section 7`);
    }

    // The learning rate changed and the MLP's cell run again: a new model, new curves, and section 7 shows that model.
    const cell = (id: string): Cell => code.find((c) => c.id === id)!;
    const [first, again] = [pictures(cell('mlp-train')), pictures(cell('again-mlp-train'))];
    for (const chart of ['mlp-loss', 'mlp-accuracy']) {
      assert.ok(first.has(chart) && again.has(chart), `the MLP's training cell shows ${chart}`);
      assert.notEqual(again.get(chart), first.get(chart), `${chart} did not change with the learning rate`);
      assert.equal(pictures(cell('results-mlp')).get(chart), again.get(chart), `section 7 shows the ${chart} of the MLP trained last`);
    }
    assert.equal(new RunFolder(join(runDir, 'mlp')).readConfig<MlpConfig>().config.learningRate, CHANGED_LEARNING_RATE);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
