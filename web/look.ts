/**
 * A run's figures as report.html shows them (its own Vega-Lite specifications and its choice
 * of images, src/reports/selection.ts, with tooltips): the loss and accuracy per epoch (with
 * the learning rate's changes marked), the test confusion matrix in counts and shares, the
 * classification report, the sample predictions and the most confident mistakes. A click on a
 * cell of a confusion matrix shows the test images that fell into it.
 */
import { NUM_CLASSES, PIXELS } from '../src/data/idx.ts';
import { CLASS_NAMES } from '../src/data/manifest.ts';
import type { LabelledImages } from '../src/data/verify.ts';
import type { ClassificationReport } from '../src/evaluation/metrics.ts';
import { argmax } from '../src/evaluation/predict.ts';
import { confusionSpec, curveSpec } from '../src/reports/charts.ts';
import { cellIndices, confidentMistakes, SAMPLES_PER_CLASS, sampleIndices } from '../src/reports/selection.ts';
import { embedChart, forPage } from './charts.ts';
import { byId, drawImage, element, percent } from './dom.ts';
import type { AppState, RunView } from './state.ts';

/** A confusion cell's images shown at most: a diagonal cell holds up to a thousand. */
const CELL_SHOWN = 60;

function facts(run: RunView): HTMLElement {
  return element('dl', { class: 'facts' }, ...run.facts.map(([label, value]) => element('div', {}, element('dt', { text: label }), element('dd', { text: value }))));
}

function reportTable(report: ClassificationReport): HTMLElement {
  const number = (value: number) => value.toFixed(3);
  const row = (name: string, cells: string[], average = false) =>
    element('tr', average ? { class: 'best' } : {}, element('td', { text: name }), ...cells.map((cell) => element('td', { text: cell })));
  const scores = (s: { precision: number; recall: number; f1: number; support: number }) => [number(s.precision), number(s.recall), number(s.f1), String(s.support)];
  return element(
    'div',
    { class: 'table-wrap' },
    element(
      'table',
      {},
      element('caption', { text: 'Classification report (test set)' }),
      element('thead', {}, element('tr', {}, ...['class', 'precision', 'recall', 'F1', 'support'].map((name) => element('th', { scope: 'col', text: name })))),
      element(
        'tbody',
        {},
        ...report.classes.map((c) => row(c.name, scores(c))),
        row('accuracy', ['', '', number(report.accuracy), String(report.weightedAvg.support)], true),
        row('macro avg', scores(report.macroAvg), true),
        row('weighted avg', scores(report.weightedAvg), true),
      ),
    ),
  );
}

function gallery(title: string, caption: string, indices: number[], images: LabelledImages, probabilities: Float32Array): HTMLElement {
  const tiles = indices.map((i) => {
    const predicted = argmax(probabilities, i * NUM_CLASSES, NUM_CLASSES);
    const probability = probabilities[i * NUM_CLASSES + predicted];
    const truth = images.labels[i];
    const canvas = element('canvas', { role: 'img', 'aria-label': `test image ${i}: a ${CLASS_NAMES[truth]}` });
    drawImage(canvas, images.pixels.subarray(i * PIXELS, (i + 1) * PIXELS));
    const mistake = predicted !== truth;
    return element(
      'figure',
      { class: mistake ? 'tile mistake' : 'tile', title: `test image #${i}: predicted ${CLASS_NAMES[predicted]} (${percent(probability, 1)}), true class ${CLASS_NAMES[truth]}` },
      canvas,
      element('figcaption', {}, element('span', { class: 'predicted', text: `${CLASS_NAMES[predicted]} ${percent(probability, 0)}` }), `true: ${CLASS_NAMES[truth]}`),
    );
  });
  return element('section', {}, element('h3', { text: title }), element('p', { class: 'note', text: caption }), element('div', { class: 'gallery' }, ...tiles));
}

/** Fills `container` with the run's figures; galleries need the test images (once the data is loaded). */
export async function renderRun(container: HTMLElement, run: RunView, images: LabelledImages | null): Promise<void> {
  container.replaceChildren(facts(run));
  const figures = element('div', { class: 'figures' });
  container.append(figures);
  const chart = () => figures.appendChild(element('div', { class: 'chart' }));
  // Square, as wide as the box allows beside the class names (about 135 px), 180 to 400 px.
  const confusionSide = Math.max(180, Math.min(400, container.clientWidth - 135));
  const cell = element('div', { class: 'cell-images', 'aria-live': 'polite' });
  const [, , ...confusion] = await Promise.all([
    embedChart(chart(), forPage(curveSpec(run.history, run.bestEpoch, 'loss', `${run.title}: loss per epoch`)), 'loss per epoch'),
    embedChart(chart(), forPage(curveSpec(run.history, run.bestEpoch, 'accuracy', `${run.title}: accuracy per epoch`)), 'accuracy per epoch'),
    embedChart(chart(), forPage(confusionSpec(run.test.confusionMatrix, CLASS_NAMES, false, 'Test confusion matrix (images)'), confusionSide), 'test confusion matrix in images; click a cell for its images'),
    embedChart(
      chart(),
      forPage(confusionSpec(run.test.confusionMatrix, CLASS_NAMES, true, 'Test confusion matrix (share of each true class)'), confusionSide),
      'test confusion matrix as shares of each true class; click a cell for its images',
    ),
  ]);
  for (const result of confusion) {
    result.view.addEventListener('click', (_event, item) => {
      // Each cell's rectangle and its number carry the row: `true` and `predicted` as "<index> <name>".
      const datum = (item as { datum?: { true?: unknown; predicted?: unknown } } | null | undefined)?.datum;
      if (typeof datum?.true !== 'string' || typeof datum.predicted !== 'string') return;
      showCell(cell, run, images, Number.parseInt(datum.true, 10), Number.parseInt(datum.predicted, 10));
    });
  }
  container.append(element('p', { class: 'note', text: 'Click a cell of either matrix to see the test images in it.' }), cell, reportTable(run.test.report));
  if (run.probabilities === null) {
    container.append(element('p', { class: 'note', text: 'This run saved no test probabilities, so there are no galleries.' }));
  } else if (images === null) {
    container.append(element('p', { class: 'note', text: 'The galleries appear once the data is loaded (the test images).' }));
  } else {
    const probabilities = run.probabilities;
    const mistakes = confidentMistakes(probabilities, images.labels);
    container.append(
      gallery('Sample test predictions', `The first ${SAMPLES_PER_CLASS} test images of each class: predicted class and its probability, true class below; mistakes in red.`, sampleIndices(images.labels), images, probabilities),
      gallery('Most confident mistakes', `The ${mistakes.length} wrong predictions made with the highest probability.`, mistakes, images, probabilities),
    );
  }
}

/** The test images of one confusion cell (true class `truth`, predicted `predicted`), the most confident first, into `container`. */
function showCell(container: HTMLElement, run: RunView, images: LabelledImages | null, truth: number, predicted: number): void {
  const count = run.test.confusionMatrix[truth][predicted];
  const title = `True ${CLASS_NAMES[truth]}, predicted ${CLASS_NAMES[predicted]}: ${count.toLocaleString('en-US')} test image${count === 1 ? '' : 's'}`;
  if (run.probabilities === null || images === null) {
    const why = run.probabilities === null ? 'this run saved no test probabilities' : 'the test images are not loaded yet';
    container.replaceChildren(element('h3', { text: title }), element('p', { class: 'note', text: `The images cannot be shown: ${why}.` }));
    return;
  }
  const indices = cellIndices(run.probabilities, images.labels, truth, predicted);
  const shown = indices.slice(0, CELL_SHOWN);
  const caption = indices.length > shown.length ? `The ${shown.length} predicted with the highest probability, of ${indices.length}.` : 'Most confident first.';
  const section = gallery(title, caption, shown, images, run.probabilities);
  section.dataset.cell = `${truth},${predicted}`;
  container.replaceChildren(section);
  section.scrollIntoView({ block: 'nearest' });
}

/** The Look tab: pick a run, see its figures. */
export class LookTab {
  private readonly select = byId<HTMLSelectElement>('run-select');
  private readonly container = byId('look');
  private readonly status = byId('look-status');
  private shown: { id: string; withImages: boolean } | null = null;

  constructor(private readonly state: AppState) {
    this.select.addEventListener('change', () => void this.show());
    state.onChange(() => this.refresh());
  }

  private refresh(): void {
    const current = this.select.value;
    this.select.replaceChildren(...this.state.runs.map((run) => element('option', { value: run.id, text: run.title })));
    if (this.state.runs.some((run) => run.id === current)) this.select.value = current;
    const visible = !byId('panel-look').hidden;
    if (visible) void this.show();
  }

  /** Draws the selected run, unless it is drawn already (with the test images where they are loaded). */
  async show(): Promise<void> {
    const run = this.state.runs.find((r) => r.id === this.select.value);
    this.status.hidden = run !== undefined;
    if (run === undefined) return;
    const withImages = this.state.test !== null;
    if (this.shown?.id === run.id && this.shown.withImages === withImages) return;
    this.shown = { id: run.id, withImages };
    await renderRun(this.container, run, this.state.test);
  }
}
