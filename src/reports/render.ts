import { existsSync } from 'node:fs';
import { Resvg } from '@resvg/resvg-js';
import type { TopLevelSpec } from 'vega-lite';
import { CHART_FONT } from './charts.ts';

export { CHART_FONT } from './charts.ts';

const FONT_FILES = [
  '/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf',
  '/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf',
  '/usr/share/fonts/TTF/DejaVuSans.ttf',
  '/usr/share/fonts/TTF/DejaVuSans-Bold.ttf',
];

/** Font files resvg is given explicitly, so PNG text does not depend on the system's font search. */
export function chartFontFiles(): string[] {
  return FONT_FILES.filter((file) => existsSync(file));
}

/**
 * Compiles a Vega-Lite spec and renders it headless to an SVG document. Vega and Vega-Lite are
 * imported here, when a chart is drawn, not with the library: vega-canvas awaits at its top
 * level, and an ES module graph with a top-level await cannot be require()d, which is how
 * CommonJS code loads the library on Node 20.19+ (the notebook's kernel, tslab, runs cells as
 * CommonJS).
 */
export async function vegaLiteToSvg(spec: TopLevelSpec): Promise<string> {
  const [vega, { compile }] = await Promise.all([import('vega'), import('vega-lite')]);
  const compiled = compile(spec).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/**
 * Rasterises an SVG document to PNG at `scale` times its size. Text needs a font: without
 * DejaVu Sans (Debian: fonts-dejavu-core) resvg falls back to whatever system font it finds,
 * and draws no text when it finds none.
 */
export function svgToPng(svg: string, scale = 2): Uint8Array {
  const fontFiles = chartFontFiles();
  const resvg = new Resvg(svg, {
    // Scanning the system's fonts takes a while; do it only when DejaVu Sans is not at hand.
    font: { fontFiles, loadSystemFonts: fontFiles.length === 0, defaultFontFamily: CHART_FONT, sansSerifFamily: CHART_FONT },
    fitTo: { mode: 'zoom', value: scale },
    background: 'white',
  });
  return resvg.render().asPng();
}
