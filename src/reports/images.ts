import { PNG } from 'pngjs';

/** One picture of a gallery: a Fashion-MNIST image with two caption lines. */
export interface GalleryItem {
  /** The image as a PNG data URI (see {@link imageUri}), encoded once for the SVG and the page. */
  image: string;
  /** First caption line: the prediction. */
  title: string;
  /** Second caption line: the true class, or the probability. */
  subtitle: string;
  /** Drawn with a red frame and red title. */
  mistake: boolean;
}

export const IMAGE_SIDE = 28;

/**
 * A grayscale image as PNG, each pixel drawn as a `scale` x `scale` block. Fashion-MNIST
 * stores ink as high values on black; it is shown dark on white, as the clothes are usually drawn.
 */
export function grayscalePng(pixels: Uint8Array, side = IMAGE_SIDE, scale = 3): Uint8Array {
  const size = side * scale;
  const png = new PNG({ width: size, height: size, colorType: 0, inputColorType: 0, inputHasAlpha: false, bitDepth: 8 });
  const data = Buffer.alloc(size * size);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) data[y * size + x] = 255 - pixels[Math.floor(y / scale) * side + Math.floor(x / scale)];
  }
  png.data = data;
  return PNG.sync.write(png, { colorType: 0, inputColorType: 0, inputHasAlpha: false });
}

export function pngDataUri(png: Uint8Array): string {
  return `data:image/png;base64,${Buffer.from(png).toString('base64')}`;
}

/** A 28x28 image (0 = background) as a PNG data URI, for a gallery tile. */
export function imageUri(pixels: Uint8Array): string {
  return pngDataUri(grayscalePng(pixels));
}

export function escapeXml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/**
 * A gallery as one SVG document: `columns` cells per row, each the image with its two caption
 * lines below, mistakes framed in red. Images are embedded as PNG data URIs, so the file
 * stands alone.
 */
export function gallerySvg(items: GalleryItem[], options: { columns: number; title: string; font: string }): string {
  const image = IMAGE_SIDE * 3;
  const cellWidth = 118;
  const cellHeight = image + 44;
  const top = 34;
  const rows = Math.ceil(items.length / options.columns);
  const width = cellWidth * options.columns + 8;
  const height = top + rows * cellHeight + 4;
  const cells = items.map((item, i) => {
    const x = 4 + (i % options.columns) * cellWidth;
    const y = top + Math.floor(i / options.columns) * cellHeight;
    const left = x + (cellWidth - image) / 2;
    const colour = item.mistake ? '#c0392b' : '#222';
    return [
      `<image x="${left}" y="${y}" width="${image}" height="${image}" href="${item.image}"/>`,
      `<rect x="${left - 1.5}" y="${y - 1.5}" width="${image + 3}" height="${image + 3}" fill="none" stroke="${item.mistake ? '#c0392b' : '#ccc'}" stroke-width="${item.mistake ? 3 : 1}"/>`,
      `<text x="${x + cellWidth / 2}" y="${y + image + 17}" text-anchor="middle" font-size="11" font-weight="bold" fill="${colour}">${escapeXml(item.title)}</text>`,
      `<text x="${x + cellWidth / 2}" y="${y + image + 31}" text-anchor="middle" font-size="10" fill="#555">${escapeXml(item.subtitle)}</text>`,
    ].join('');
  });
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="${escapeXml(options.font)}">`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
    `<text x="4" y="20" font-size="14" font-weight="bold" fill="#000">${escapeXml(options.title)}</text>`,
    ...cells,
    '</svg>',
  ].join('\n');
}
