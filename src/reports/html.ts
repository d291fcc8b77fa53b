import type { ClassificationReport } from '../evaluation/metrics.ts';
import { VERSION } from '../version.ts';
import { escapeXml as escape, type GalleryItem } from './images.ts';

/** A chart of the report: its SVG document, inlined into the page. */
export interface Figure {
  title: string;
  svg: string;
  caption?: string;
  /** Path of the SVG file relative to report.html (the PNG sits beside it). */
  file: string;
}

export interface ModelSection {
  /** Anchor of the section. */
  id: string;
  title: string;
  /** Label and value pairs shown at the top of the section. */
  facts: [string, string][];
  /** The configuration the model was trained with. */
  config: Record<string, unknown>;
  figures: Figure[];
  report: ClassificationReport;
  /** Image galleries: drawn as HTML on the page (so they reflow on a phone), saved as SVG too. */
  galleries: { figure: Figure; items: GalleryItem[] }[];
}

export interface SummarySection {
  rows: { id: string; title: string; testAccuracy: number; validationAccuracy: number; trainingSeconds: number; parameterCount: number }[];
  figures: Figure[];
  notes: string[];
}

export interface SearchSection {
  facts: [string, string][];
  figures: Figure[];
  /** Parameter names, in the table's column order. */
  parameters: string[];
  trials: { trial: number; params: Record<string, number | string | boolean>; valAccuracy: number | null; epochs: number; seconds: number }[];
  /** The best trial's test figures, when the search has evaluated it. */
  report: ClassificationReport | null;
}

export interface ReportContent {
  title: string;
  runDir: string;
  summary: SummarySection | null;
  search?: SearchSection;
  sections: ModelSection[];
}

const STYLE = `
:root { color-scheme: light; --ink: #1f2328; --muted: #59636e; --line: #d1d9e0; --bad: #c0392b; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.5 "DejaVu Sans", Verdana, system-ui, sans-serif; color: var(--ink); background: #f6f8fa; }
header, main { max-width: 1180px; margin: 0 auto; padding: 0 16px; }
header { padding-top: 20px; }
h1 { font-size: 1.5rem; margin: 0 0 4px; word-break: break-word; }
h2 { font-size: 1.25rem; margin: 0 0 12px; }
h3 { font-size: 1rem; margin: 20px 0 8px; }
.meta { color: var(--muted); font-size: 0.85rem; margin: 0; overflow-wrap: anywhere; }
nav { margin: 12px 0; display: flex; flex-wrap: wrap; gap: 8px; }
nav a { padding: 4px 10px; border: 1px solid var(--line); border-radius: 14px; background: white; text-decoration: none; color: #0969da; }
section { background: white; border: 1px solid var(--line); border-radius: 8px; padding: 16px; margin: 16px 0; }
.facts { display: grid; grid-template-columns: repeat(auto-fill, minmax(170px, 1fr)); gap: 8px; margin: 0 0 8px; }
.facts div { border-left: 3px solid #4c78a8; padding-left: 8px; }
.facts dt { color: var(--muted); font-size: 0.8rem; }
.facts dd { margin: 0; font-weight: bold; word-break: break-word; }
.figures { display: grid; grid-template-columns: repeat(auto-fit, minmax(min(100%, 460px), 1fr)); gap: 16px; align-items: start; }
figure { margin: 0; }
figure img.chart { display: block; max-width: 100%; height: auto; }
figcaption { color: var(--muted); font-size: 0.85rem; }
figcaption a { color: #0969da; }
.table-wrap { overflow-x: auto; }
table { border-collapse: collapse; font-variant-numeric: tabular-nums; }
th, td { padding: 4px 10px; border-bottom: 1px solid var(--line); text-align: right; white-space: nowrap; }
th:first-child, td:first-child { text-align: left; }
tr.average td { font-weight: bold; }
.gallery { display: grid; grid-template-columns: repeat(auto-fill, minmax(96px, 1fr)); gap: 10px; }
.tile { text-align: center; font-size: 0.75rem; }
.tile img { width: 84px; height: 84px; image-rendering: pixelated; border: 1px solid var(--line); }
.tile.mistake img { border: 3px solid var(--bad); }
.tile .predicted { font-weight: bold; display: block; }
.tile.mistake .predicted { color: var(--bad); }
.tile .truth { color: var(--muted); display: block; }
details { margin-top: 12px; }
pre { background: #f6f8fa; padding: 8px; overflow-x: auto; font-size: 0.8rem; }
@media (max-width: 600px) {
  header, main { padding: 0 8px; }
  section { padding: 10px; }
  th, td { padding: 3px 6px; }
}
footer { max-width: 1180px; margin: 0 auto 24px; padding: 0 16px; color: var(--muted); font-size: 0.8rem; }
`;

/** The SVG's own width, so the page shows a chart at its natural size unless the screen is narrower. */
function svgWidth(svg: string): number | null {
  const match = /<svg[^>]*\swidth="([\d.]+)"/.exec(svg);
  return match ? Math.round(Number(match[1])) : null;
}

function figureHtml(figure: Figure): string {
  const width = svgWidth(figure.svg);
  const source = `data:image/svg+xml;base64,${Buffer.from(figure.svg).toString('base64')}`;
  const png = figure.file.replace(/\.svg$/, '.png');
  return [
    '<figure>',
    `<img class="chart" src="${source}" alt="${escape(figure.title)}"${width === null ? '' : ` width="${width}"`}>`,
    `<figcaption>${figure.caption ? `${escape(figure.caption)} ` : ''}<a href="${escape(figure.file)}">SVG</a> · <a href="${escape(png)}">PNG</a></figcaption>`,
    '</figure>',
  ].join('');
}

function galleryHtml(gallery: ModelSection['galleries'][number]): string {
  const tiles = gallery.items.map(
    (item) =>
      `<div class="tile${item.mistake ? ' mistake' : ''}"><img src="${item.image}" alt="${escape(`${item.title}, ${item.subtitle}`)}" width="84" height="84">` +
      `<span class="predicted">${escape(item.title)}</span><span class="truth">${escape(item.subtitle)}</span></div>`,
  );
  return [
    `<h3>${escape(gallery.figure.title)}</h3>`,
    gallery.items.length === 0 ? '<p>No mistakes on the test set.</p>' : `<div class="gallery">${tiles.join('')}</div>`,
    `<p class="meta">${gallery.figure.caption ? `${escape(gallery.figure.caption)} ` : ''}<a href="${escape(gallery.figure.file)}">SVG</a> · <a href="${escape(gallery.figure.file.replace(/\.svg$/, '.png'))}">PNG</a></p>`,
  ].join('\n');
}

function reportTable(report: ClassificationReport): string {
  const number = (value: number) => value.toFixed(3);
  const row = (name: string, s: { precision: number; recall: number; f1: number; support: number }, average = false) =>
    `<tr${average ? ' class="average"' : ''}><td>${escape(name)}</td><td>${number(s.precision)}</td><td>${number(s.recall)}</td><td>${number(s.f1)}</td><td>${s.support}</td></tr>`;
  return [
    '<div class="table-wrap"><table>',
    '<thead><tr><th>class</th><th>precision</th><th>recall</th><th>F1</th><th>support</th></tr></thead><tbody>',
    ...report.classes.map((scores) => row(scores.name, scores)),
    `<tr class="average"><td>accuracy</td><td></td><td></td><td>${number(report.accuracy)}</td><td>${report.weightedAvg.support}</td></tr>`,
    row('macro avg', report.macroAvg, true),
    row('weighted avg', report.weightedAvg, true),
    '</tbody></table></div>',
  ].join('\n');
}

function summaryHtml(summary: SummarySection): string {
  const percent = (value: number) => `${(value * 100).toFixed(2)}%`;
  return [
    '<section id="summary"><h2>Summary</h2>',
    '<div class="table-wrap"><table><thead><tr><th>model</th><th>test accuracy</th><th>validation accuracy</th><th>training s</th><th>parameters</th></tr></thead><tbody>',
    ...summary.rows.map(
      (row) =>
        `<tr><td><a href="#${row.id}">${escape(row.title)}</a></td><td>${percent(row.testAccuracy)}</td><td>${percent(row.validationAccuracy)}</td><td>${row.trainingSeconds.toFixed(1)}</td><td>${row.parameterCount.toLocaleString('en-US')}</td></tr>`,
    ),
    '</tbody></table></div>',
    `<p class="meta">${summary.notes.map(escape).join(' · ')}</p>`,
    `<div class="figures">${summary.figures.map(figureHtml).join('\n')}</div>`,
    '</section>',
  ].join('\n');
}

function sectionHtml(section: ModelSection): string {
  return [
    `<section id="${escape(section.id)}"><h2>${escape(section.title)}</h2>`,
    `<dl class="facts">${section.facts.map(([label, value]) => `<div><dt>${escape(label)}</dt><dd>${escape(value)}</dd></div>`).join('')}</dl>`,
    `<div class="figures">${section.figures.map(figureHtml).join('\n')}</div>`,
    '<h3>Classification report (test set)</h3>',
    reportTable(section.report),
    ...section.galleries.map(galleryHtml),
    `<details><summary>Configuration</summary><pre>${escape(JSON.stringify(section.config, null, 2))}</pre></details>`,
    '</section>',
  ].join('\n');
}

function searchHtml(search: SearchSection): string {
  const head = ['rank', 'trial', ...search.parameters, 'val accuracy', 'epochs', 'seconds'];
  const rows = search.trials.map(
    (t, i) =>
      `<tr><td>${i + 1}</td><td>${t.trial}</td>${search.parameters.map((name) => `<td>${escape(String(t.params[name] ?? ''))}</td>`).join('')}` +
      `<td>${t.valAccuracy === null ? 'diverged' : `${(t.valAccuracy * 100).toFixed(2)}%`}</td><td>${t.epochs}</td><td>${t.seconds.toFixed(1)}</td></tr>`,
  );
  return [
    '<section id="search"><h2>Hyperparameter search</h2>',
    `<dl class="facts">${search.facts.map(([label, value]) => `<div><dt>${escape(label)}</dt><dd>${escape(value)}</dd></div>`).join('')}</dl>`,
    `<div class="figures">${search.figures.map(figureHtml).join('\n')}</div>`,
    '<h3>All trials, best validation accuracy first</h3>',
    `<div class="table-wrap"><table><thead><tr>${head.map((name) => `<th>${escape(name)}</th>`).join('')}</tr></thead><tbody>${rows.join('\n')}</tbody></table></div>`,
    search.report ? `<h3>Best trial: classification report (test set, evaluated once after the search)</h3>\n${reportTable(search.report)}` : '',
    '</section>',
  ].join('\n');
}

/** The whole report as one HTML document: styles and images inlined, nothing fetched. */
export function reportHtml(content: ReportContent): string {
  const links = [
    ...(content.summary ? [['summary', 'Summary']] : []),
    ...(content.search ? [['search', 'Search']] : []),
    ...content.sections.map((s) => [s.id, s.title]),
  ];
  return [
    '<!doctype html>',
    '<html lang="en"><head><meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>${escape(content.title)}</title>`,
    `<style>${STYLE}</style></head><body>`,
    `<header><h1>${escape(content.title)}</h1><p class="meta">run folder: ${escape(content.runDir)}</p>`,
    links.length > 1 ? `<nav>${links.map(([id, title]) => `<a href="#${escape(id)}">${escape(title)}</a>`).join('')}</nav>` : '',
    '</header><main>',
    content.summary ? summaryHtml(content.summary) : '',
    content.search ? searchHtml(content.search) : '',
    ...content.sections.map(sectionHtml),
    '</main>',
    `<footer>Made by fashion-mnist-ts ${escape(VERSION)} (fmnist report). Figures are on the official test set; models were chosen on the validation set.</footer>`,
    '</body></html>',
  ].join('\n');
}
