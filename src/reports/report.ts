import { existsSync, readFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { NUM_CLASSES, PIXELS } from '../data/idx.ts';
import { loadTestSet, type LabelledImages } from '../data/load.ts';
import { locateData, type LocateOptions } from '../data/locate.ts';
import { UserError } from '../errors.ts';
import { argmax } from '../evaluation/predict.ts';
import { pca } from '../evaluation/pca.ts';
import { makeFolder, writeFileAtomic } from '../io/atomic.ts';
import { loadKernels, type BackendName, type Kernels } from '../kernels/index.ts';
import { pipelineFeatures } from '../models/features.ts';
import type { ModelDescription } from '../models/model-file.ts';
import { evaluateSavedModel } from '../runs/evaluate.ts';
import type { PipelineSummary } from '../runs/pipeline.ts';
import { PipelineFolder, RunFolder, type ModelKind, type RunMetrics } from '../runs/run-folder.ts';
import type { EpochRecord } from '../training/fit.ts';
import type { SearchSettings } from '../search/settings.ts';
import type { FinalEvaluation, TrialSummary } from '../search/summary.ts';
import { barSpec, confusionSpec, hyperparameterSpec, scatterSpec, trialCurvesSpec } from './charts.ts';
import { reportHtml, type Figure, type ModelSection, type SearchSection, type SummarySection } from './html.ts';
import { gallerySvg, imageUri, type GalleryItem } from './images.ts';
import { learningCurves } from './pictures.ts';
import { confidentMistakes, SAMPLES_PER_CLASS, sampleIndices } from './selection.ts';
import { CHART_FONT, svgToPng, vegaLiteToSvg } from './render.ts';
import type { TopLevelSpec } from 'vega-lite';

export interface ReportOptions {
  data?: LocateOptions;
  allowModifiedData?: boolean;
  /** Backend for the few computations a report may need (older runs without saved probabilities). */
  backend?: BackendName | 'auto';
  threads?: number;
  log?: (message: string) => void;
}

export interface ReportResult {
  /** Path of report.html. */
  path: string;
  /** Every chart file written (SVG and PNG), in the run folder's charts/. */
  charts: string[];
}

/** What a model's run folder holds, as the report reads it. */
interface ModelRun {
  kind: ModelKind;
  title: string;
  dir: string;
  /** File-name prefix of its charts. */
  slug: string;
  folder: RunFolder;
  history: EpochRecord[];
  metrics: RunMetrics;
  config: Record<string, unknown>;
  description: ModelDescription;
}

const TITLES: Record<ModelKind, string> = { mlp: 'MLP on pixels', cnn: 'CNN', 'cnn-features-mlp': 'MLP on CNN features' };
/** Points drawn in the PCA scatter: every test image would make a 1 MB chart of overlapping dots. */
const PCA_POINTS = 3000;

function readJson<T>(path: string): T {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as T;
  } catch (error) {
    throw new UserError(`Cannot read ${path} (${error instanceof Error ? error.message : String(error)}); the run folder looks incomplete.`);
  }
}

function readModelRun(dir: string, slug: string): ModelRun {
  const folder = new RunFolder(dir);
  const metrics = folder.readMetrics();
  return {
    kind: metrics.kind,
    title: TITLES[metrics.kind] ?? metrics.kind,
    dir,
    slug,
    folder,
    history: folder.readHistory(),
    metrics,
    config: folder.readConfig<Record<string, unknown>>().config ?? {},
    description: folder.modelDescription(),
  };
}

/** Lazily loaded kernels: a report of a recent run needs none. */
function kernelSource(options: ReportOptions): () => Promise<Kernels> {
  let kernels: Promise<Kernels> | undefined;
  return () => (kernels ??= loadKernels(options.backend ?? 'auto', { threads: options.threads, onFallback: options.log }));
}

/** The test images' softmax probabilities, [10000, 10]: saved by training, else computed again. */
async function testProbabilities(run: ModelRun, count: number, options: ReportOptions, kernels: () => Promise<Kernels>): Promise<Float32Array> {
  const saved = run.folder.readTestProbabilities(count);
  if (saved) return saved;
  options.log?.(`${run.dir}: no saved test probabilities; evaluating the model on the test set again`);
  const evaluation = await evaluateSavedModel(run.dir, { data: options.data, allowModifiedData: options.allowModifiedData, kernels: await kernels() });
  return evaluation.probabilities;
}

class ChartWriter {
  readonly files: string[] = [];
  readonly dir: string;

  constructor(runDir: string) {
    this.dir = join(runDir, 'charts');
    makeFolder(this.dir);
  }

  /** Writes name.svg and name.png; returns the figure for the page. */
  write(name: string, svg: string, title: string, caption?: string): Figure {
    const svgPath = join(this.dir, `${name}.svg`);
    const pngPath = join(this.dir, `${name}.png`);
    writeFileAtomic(svgPath, svg);
    writeFileAtomic(pngPath, svgToPng(svg));
    this.files.push(svgPath, pngPath);
    return { title, svg, caption, file: `charts/${name}.svg` };
  }

  async chart(name: string, spec: TopLevelSpec, title: string, caption?: string): Promise<Figure> {
    return this.write(name, await vegaLiteToSvg(spec), title, caption);
  }
}

function imageOf(images: LabelledImages, index: number): Uint8Array {
  return images.pixels.subarray(index * PIXELS, (index + 1) * PIXELS);
}

/** What every model's section draws on: the test images, the chart files, kernels if needed. */
interface SectionContext {
  images: LabelledImages;
  charts: ChartWriter;
  options: ReportOptions;
  kernels: () => Promise<Kernels>;
  /** The CNN's test features for the PCA, or null where there are none. */
  features: () => Promise<Float32Array | null>;
}

async function modelSection(run: ModelRun, { images, charts, options, kernels, features }: SectionContext): Promise<ModelSection> {
  const { metrics, history, slug } = run;
  const classNames = run.description.classNames;
  const probabilities = await testProbabilities(run, images.count, options, kernels);
  const predicted = Uint8Array.from({ length: images.count }, (_, i) => argmax(probabilities, i * NUM_CLASSES, NUM_CLASSES));
  const probabilityOf = (i: number) => probabilities[i * NUM_CLASSES + predicted[i]];

  const curves = await learningCurves(history, metrics.bestEpoch, run.title);
  const figures: Figure[] = [
    charts.write(`${slug}-loss`, curves.loss, 'Loss per epoch', 'The dashed line marks the epoch whose weights were kept (best validation accuracy).'),
    charts.write(`${slug}-accuracy`, curves.accuracy, 'Accuracy per epoch'),
    await charts.chart(`${slug}-confusion`, confusionSpec(metrics.test.confusionMatrix, classNames, false, `${run.title}: test confusion matrix (images)`), 'Confusion matrix, counts'),
    await charts.chart(
      `${slug}-confusion-normalised`,
      confusionSpec(metrics.test.confusionMatrix, classNames, true, `${run.title}: test confusion matrix (share of each true class)`),
      'Confusion matrix, row-normalised',
      'Each row sums to 100%: the diagonal is the recall of the class.',
    ),
  ];

  const item = (i: number, subtitle: string): GalleryItem => ({
    image: imageUri(imageOf(images, i)),
    title: `${classNames[predicted[i]]} ${(probabilityOf(i) * 100).toFixed(0)}%`,
    subtitle,
    mistake: predicted[i] !== images.labels[i],
  });
  const samples = sampleIndices(images.labels).map((i) => item(i, `true: ${classNames[images.labels[i]]}`));
  const mistakes = confidentMistakes(probabilities, images.labels).map((i) => item(i, `true: ${classNames[images.labels[i]]} (#${i})`));
  const galleries = [
    {
      figure: charts.write(`${slug}-samples`, gallerySvg(samples, { columns: NUM_CLASSES, title: `${run.title}: sample test predictions`, font: CHART_FONT }), 'Sample test predictions', `The first ${SAMPLES_PER_CLASS} test images of each class: predicted class and its probability, true class below; mistakes in red.`),
      items: samples,
    },
    {
      figure: charts.write(`${slug}-mistakes`, gallerySvg(mistakes, { columns: NUM_CLASSES, title: `${run.title}: most confident mistakes`, font: CHART_FONT }), 'Most confident mistakes', `The ${mistakes.length} wrong predictions made with the highest probability, with the test image's index.`),
      items: mistakes,
    },
  ];

  if (run.kind === 'cnn') {
    const values = await features();
    if (values !== null) {
      const size = values.length / images.count;
      const result = pca(values, images.count, size, 2);
      const stride = Math.max(1, Math.floor(images.count / PCA_POINTS));
      const points = [];
      for (let i = 0; i < images.count; i += stride) points.push({ x: result.projection[2 * i], y: result.projection[2 * i + 1], label: classNames[images.labels[i]] });
      const [first, second] = result.explainedRatio.map((r) => `${(r * 100).toFixed(1)}%`);
      figures.push(
        await charts.chart(
          `${slug}-features-pca`,
          scatterSpec(points, classNames, { title: `${run.title}: test features, first two principal components`, xTitle: `PC 1 (${first} of variance)`, yTitle: `PC 2 (${second} of variance)` }),
          'Features in two dimensions (PCA)',
          `The ${size} features of the test images projected on their first two principal components (computed over all ${images.count}); every ${stride === 1 ? '' : `${stride}th `}image drawn, coloured by true class.`,
        ),
      );
    }
  }

  return {
    id: slug,
    title: run.title,
    facts: [
      ['test accuracy', `${(metrics.test.accuracy * 100).toFixed(2)}%`],
      ['validation accuracy', `${(metrics.validation.accuracy * 100).toFixed(2)}% (epoch ${metrics.bestEpoch})`],
      ['epochs run', `${metrics.epochsRun}${metrics.stoppedEarly ? ' (stopped early)' : ''}`],
      ['training time', `${metrics.trainingSeconds.toFixed(1)} s`],
      ['parameters', metrics.parameterCount.toLocaleString('en-US')],
      ['backend', metrics.backend],
    ],
    config: run.config,
    figures,
    report: metrics.test.report,
    galleries,
  };
}

/**
 * Features of the test images for the PCA: the pipeline's saved ones, else computed by the CNN
 * as a pipeline would save them (averaged with the mirror image's where it flips at test time).
 */
function featureSource(runDir: string, cnnRun: ModelRun | undefined, images: LabelledImages, kernels: () => Promise<Kernels>): () => Promise<Float32Array | null> {
  return async () => {
    const saved = new PipelineFolder(runDir).features.readX('test');
    if (saved && saved.length % images.count === 0) return saved;
    if (cnnRun?.description.featureLayer === undefined) return null;
    const { model } = cnnRun.folder.loadModel(await kernels());
    try {
      return await pipelineFeatures(await kernels(), model, cnnRun.description, images);
    } finally {
      model.dispose();
    }
  };
}

async function summarySection(summary: PipelineSummary, runs: ModelRun[], charts: ChartWriter): Promise<SummarySection> {
  const figures = [
    await charts.chart(
      'summary-test-accuracy',
      barSpec(runs.map((run) => ({ model: run.title, value: run.metrics.test.accuracy })), { title: 'Test accuracy', axisTitle: 'test accuracy', format: '.2%', zeroBased: false }),
      'Test accuracy',
    ),
    await charts.chart(
      'summary-training-time',
      barSpec(runs.map((run) => ({ model: run.title, value: run.metrics.trainingSeconds })), { title: 'Training time', axisTitle: 'seconds', format: '.1f' }),
      'Training time',
      `Seconds spent in training epochs (validation included); extracting the features took ${summary.featureSeconds.toFixed(1)} s more.`,
    ),
  ];
  return {
    rows: runs.map((run) => ({
      id: run.slug,
      title: run.title,
      testAccuracy: run.metrics.test.accuracy,
      validationAccuracy: run.metrics.validation.accuracy,
      trainingSeconds: run.metrics.trainingSeconds,
      parameterCount: run.metrics.parameterCount,
    })),
    figures,
    notes: [`backend: ${summary.backend}`, `seed ${summary.seed}`, summary.quick ? 'quick run (--quick): fewer images and epochs' : 'full run'],
  };
}

const LOG_SCALE_PARAMETERS = new Set(['learningRate']);

/** The search folder's section: learning curves, accuracy against each hyperparameter, the table. */
async function searchSection(dir: string, charts: ChartWriter): Promise<SearchSection> {
  const { settings, rungs, trials } = readJson<{ settings: SearchSettings; rungs: number[]; trials: TrialSummary[] }>(join(dir, 'trials.json'));
  const final = existsSync(join(dir, 'best.json')) ? readJson<FinalEvaluation>(join(dir, 'best.json')) : null;
  const best = trials[0];
  const finished = trials.filter((t) => t.valAccuracy !== null);
  const figures = [
    await charts.chart(
      'search-learning-curves',
      trialCurvesSpec(trials.flatMap((t) => t.curve.map((valAccuracy, i) => ({ trial: t.trial, epoch: i + 1, valAccuracy }))), best.trial),
      'Learning curves',
      `Successive halving stops the weaker trials at ${rungs.slice(0, -1).join(', ')} epochs; the rest train to ${rungs[rungs.length - 1]}.`,
    ),
  ];
  for (const [name, spec] of Object.entries(settings.space)) {
    const scale = spec.type === 'choice' ? 'category' : LOG_SCALE_PARAMETERS.has(name) || spec.type === 'log-uniform' ? 'log' : 'linear';
    figures.push(
      await charts.chart(
        `search-${name}`,
        hyperparameterSpec(finished.map((t) => ({ value: typeof t.params[name] === 'boolean' ? String(t.params[name]) : (t.params[name] as number | string), valAccuracy: t.valAccuracy!, epochs: t.epochs, trial: t.trial })), name, { scale }),
        `Validation accuracy against ${name}`,
      ),
    );
  }
  const percent = (value: number) => `${(value * 100).toFixed(2)}%`;
  return {
    facts: [
      ['model', settings.model],
      ['best trial', `${best.trial}`],
      ['best validation accuracy', best.valAccuracy === null ? 'diverged' : percent(best.valAccuracy)],
      ['its test accuracy', final ? percent(final.test.accuracy) : 'not evaluated yet'],
      ['trials', `${trials.length} (${settings.strategy})`],
      ['rungs (epochs)', rungs.join(', ')],
    ],
    figures,
    parameters: Object.keys(settings.space),
    trials,
    report: final?.test.report ?? null,
  };
}

/**
 * Builds `report.html` for a run folder (a pipeline's, or one model's from `fmnist train`),
 * writing every chart as SVG and PNG into its charts/ folder. Reads the official test images
 * for the galleries.
 */
export async function buildReport(runDir: string, options: ReportOptions = {}): Promise<ReportResult> {
  const dir = resolve(runDir);
  const pipeline = PipelineFolder.isPipeline(dir);
  if (existsSync(join(dir, 'trials.json'))) {
    const charts = new ChartWriter(dir);
    const search = await searchSection(dir, charts);
    const path = join(dir, 'report.html');
    writeFileAtomic(path, reportHtml({ title: `Fashion-MNIST hyperparameter search: ${basename(dir)}`, runDir: dir, summary: null, search, sections: [] }));
    return { path, charts: charts.files };
  }
  if (!pipeline && new RunFolder(dir).state() !== 'done') {
    throw new UserError(`${runDir} holds no finished run (no summary.json, metrics.json or trials.json); pass a folder written by fmnist pipeline, train or search.`);
  }
  const runs = pipeline
    ? [readModelRun(join(dir, 'mlp'), 'mlp'), readModelRun(join(dir, 'cnn'), 'cnn'), readModelRun(join(dir, 'cnn-features-mlp'), 'cnn-features-mlp')]
    : [readModelRun(dir, 'model')];
  const location = await locateData(options.data);
  const images = loadTestSet(location.dir, { allowModified: options.allowModifiedData }).data;
  const kernels = kernelSource(options);
  const charts = new ChartWriter(dir);
  const features = featureSource(dir, runs.find((run) => run.kind === 'cnn'), images, kernels);

  const summary = pipeline ? await summarySection(new PipelineFolder(dir).readSummary<PipelineSummary>(), runs, charts) : null;
  const sections: ModelSection[] = [];
  for (const run of runs) {
    options.log?.(`report: ${run.title}`);
    sections.push(await modelSection(run, { images, charts, options, kernels, features }));
  }
  const path = join(dir, 'report.html');
  writeFileAtomic(path, reportHtml({ title: pipeline ? `Fashion-MNIST pipeline: ${basename(dir)}` : `Fashion-MNIST ${runs[0].title}: ${basename(dir)}`, runDir: dir, summary, sections }));
  return { path, charts: charts.files };
}
