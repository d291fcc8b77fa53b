/**
 * The report's pictures one at a time, as SVG documents, for a notebook or a script that shows
 * each where it is made: a model's learning curves, and Fashion-MNIST images in a captioned
 * grid. The report draws its own with these (report.ts).
 */
import type { EpochRecord } from '../training/fit.ts';
import { curveSpec } from './charts.ts';
import { gallerySvg, imageUri } from './images.ts';
import { CHART_FONT, vegaLiteToSvg } from './render.ts';

/** Training and validation loss, and accuracy, per epoch, the epoch whose weights were kept marked; `title` names the model. */
export async function learningCurves(history: EpochRecord[], bestEpoch: number, title: string): Promise<{ loss: string; accuracy: string }> {
  const [loss, accuracy] = await Promise.all([
    vegaLiteToSvg(curveSpec(history, bestEpoch, 'loss', `${title}: loss per epoch`)),
    vegaLiteToSvg(curveSpec(history, bestEpoch, 'accuracy', `${title}: accuracy per epoch`)),
  ]);
  return { loss, accuracy };
}

/** One image of a grid: 28x28 pixels (0 = background, as in the files) and its caption. */
export interface ImageTile {
  /** 784 bytes, row by row, as in the data files. */
  pixels: Uint8Array;
  /** First caption line, in bold. */
  title: string;
  /** Second caption line. */
  subtitle?: string;
  /** Drawn framed in red, as a wrong prediction is. */
  mistake?: boolean;
}

/** Images in rows of `columns`, each with its caption, under a title: the report's galleries. */
export function imageGrid(tiles: readonly ImageTile[], options: { columns: number; title: string }): string {
  const items = tiles.map((tile) => ({ image: imageUri(tile.pixels), title: tile.title, subtitle: tile.subtitle ?? '', mistake: tile.mistake ?? false }));
  return gallerySvg(items, { columns: options.columns, title: options.title, font: CHART_FONT });
}
