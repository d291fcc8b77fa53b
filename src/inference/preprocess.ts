/**
 * People's images brought to Fashion-MNIST's form: 28x28 bytes, a light garment on a black
 * background, the garment's longest side filling the frame. Plain TypeScript over RGBA pixels
 * and no Node API, so a web page can run it on a canvas's ImageData as `fmnist predict` and
 * `fmnist serve` run it on decoded files.
 *
 * The dataset's authors made their images from product photos on white (Xiao et al. 2017,
 * the Fashion-MNIST README): trim the edges close to the corner colour (5% of the largest
 * distance in RGB space), fit the longest side to 28, centre on the shorter side, negate,
 * grayscale. `toFashionMnist` follows those steps, with two changes: it detects whether the
 * background is light (and only then negates), and it shrinks by averaging each output pixel's
 * area instead of skipping rows and columns (the authors then sharpened; averaging needs no
 * sharpening to undo aliasing).
 */

/** Decoded pixels: RGBA, 4 bytes a pixel, rows top to bottom (a canvas's ImageData is one). */
export interface RgbaImage {
  width: number;
  height: number;
  /** [height, width, 4] bytes. */
  data: Uint8Array | Uint8ClampedArray;
}

/** An image in Fashion-MNIST's form. */
export interface FashionImage {
  /** [28, 28] bytes, the garment light (up to 255) on a background of 0. */
  pixels: Uint8Array;
  /** True when the background was light and the image was negated to put the garment light on dark. */
  inverted: boolean;
}

export const FASHION_SIZE = 28;

/**
 * Objects differ from the background by more than 5% of the largest distance in RGB space
 * (255·√3), the authors' trimming threshold.
 */
const OBJECT_DISTANCE = 0.05 * 255 * Math.sqrt(3);

/** ITU-R BT.601 luma, the weights of PIL's and ImageMagick's grayscale conversion. */
const luma = (r: number, g: number, b: number) => 0.299 * r + 0.587 * g + 0.114 * b;

/** Throws when `data` does not hold width x height RGBA pixels. */
function checkImage(image: RgbaImage): void {
  const { width, height, data } = image;
  if (!(width >= 1 && height >= 1) || data.length !== width * height * 4) {
    throw new RangeError(`an RGBA image of ${width}x${height} needs ${Math.max(0, width * height * 4)} bytes, got ${data.length}`);
  }
}

/**
 * Channel `channel` of pixel `pixel` composited over white (0..255): a transparent area is
 * background, as on the white page of the photos the dataset was made from.
 */
function overWhite(data: RgbaImage['data'], pixel: number, channel: number): number {
  const alpha = data[pixel * 4 + 3];
  return (data[pixel * 4 + channel] * alpha + 255 * (255 - alpha)) / 255;
}

/** The background colour: the per-channel median of the border pixels (robust to an object touching an edge). */
function borderColour(image: RgbaImage): [number, number, number] {
  const { width, height } = image;
  const border: number[] = [];
  for (let x = 0; x < width; x++) border.push(x, (height - 1) * width + x);
  for (let y = 1; y < height - 1; y++) border.push(y * width, y * width + width - 1);
  const median = (channel: number) => {
    const values = border.map((p) => overWhite(image.data, p, channel)).sort((a, b) => a - b);
    return values[values.length >> 1];
  };
  return [median(0), median(1), median(2)];
}

/** The smallest rectangle holding every pixel that differs from the background; the whole image when none does. */
function objectBox(image: RgbaImage, background: readonly number[]): { x: number; y: number; w: number; h: number } {
  const { width, height, data } = image;
  const limit = OBJECT_DISTANCE * OBJECT_DISTANCE;
  let left = width;
  let right = -1;
  let top = height;
  let bottom = -1;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const p = y * width + x;
      const dr = overWhite(data, p, 0) - background[0];
      const dg = overWhite(data, p, 1) - background[1];
      const db = overWhite(data, p, 2) - background[2];
      if (dr * dr + dg * dg + db * db <= limit) continue;
      if (x < left) left = x;
      if (x > right) right = x;
      if (y < top) top = y;
      bottom = y;
    }
  }
  if (right < 0) return { x: 0, y: 0, w: width, h: height };
  return { x: left, y: top, w: right - left + 1, h: bottom - top + 1 };
}

/**
 * For each of `target` output positions along an axis of `source` pixels, the source pixels it
 * takes and their weights (summing to 1). Shrinking averages each output pixel's area (a box
 * filter with fractional edges); enlarging interpolates linearly between pixel centres; the same
 * size copies.
 */
export function axisWeights(source: number, target: number): { first: number; weights: number[] }[] {
  const ratio = source / target;
  const taps: { first: number; weights: number[] }[] = [];
  for (let o = 0; o < target; o++) {
    if (ratio > 1) {
      const start = o * ratio;
      const end = start + ratio;
      const first = Math.floor(start);
      const weights: number[] = [];
      for (let i = first; i < Math.min(source, Math.ceil(end)); i++) weights.push((Math.min(end, i + 1) - Math.max(start, i)) / ratio);
      taps.push({ first, weights });
    } else {
      const centre = Math.min(source - 1, Math.max(0, (o + 0.5) * ratio - 0.5));
      const first = Math.min(Math.floor(centre), Math.max(0, source - 2));
      const fraction = centre - first;
      taps.push(source === 1 ? { first: 0, weights: [1] } : { first, weights: [1 - fraction, fraction] });
    }
  }
  return taps;
}

/** `plane` [height, width] resampled to [newHeight, newWidth], columns then rows. */
function resize(plane: Float32Array, width: number, height: number, newWidth: number, newHeight: number): Float32Array {
  const columns = axisWeights(width, newWidth);
  const rows = axisWeights(height, newHeight);
  const wide = new Float32Array(height * newWidth);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < newWidth; x++) {
      const { first, weights } = columns[x];
      let sum = 0;
      for (let i = 0; i < weights.length; i++) sum += plane[y * width + first + i] * weights[i];
      wide[y * newWidth + x] = sum;
    }
  }
  const out = new Float32Array(newHeight * newWidth);
  for (let y = 0; y < newHeight; y++) {
    const { first, weights } = rows[y];
    for (let x = 0; x < newWidth; x++) {
      let sum = 0;
      for (let i = 0; i < weights.length; i++) sum += wide[(first + i) * newWidth + x] * weights[i];
      out[y * newWidth + x] = sum;
    }
  }
  return out;
}

/**
 * An image of any size in Fashion-MNIST's form: composited over white, the background found
 * from the border, negated when it is light, cropped to the object, its longest side fitted to
 * 28 (aspect ratio kept), centred. Intensities are stretched so the background is 0 and the
 * far end of the scale (black on a white background, white on a black one) is 255.
 */
export function toFashionMnist(image: RgbaImage): FashionImage {
  checkImage(image);
  const { width, data } = image;
  const background = borderColour(image);
  const box = objectBox(image, background);
  const backgroundLuma = luma(background[0], background[1], background[2]);
  const inverted = backgroundLuma > 127.5;
  // Distance from the background towards the garment, on a scale where the farthest possible is 255.
  const scale = 255 / Math.max(1, inverted ? backgroundLuma : 255 - backgroundLuma);
  const plane = new Float32Array(box.w * box.h);
  for (let y = 0; y < box.h; y++) {
    for (let x = 0; x < box.w; x++) {
      const p = (box.y + y) * width + box.x + x;
      const value = luma(overWhite(data, p, 0), overWhite(data, p, 1), overWhite(data, p, 2));
      plane[y * box.w + x] = Math.max(0, (inverted ? backgroundLuma - value : value - backgroundLuma) * scale);
    }
  }
  const fit = FASHION_SIZE / Math.max(box.w, box.h);
  const newWidth = Math.max(1, Math.min(FASHION_SIZE, Math.round(box.w * fit)));
  const newHeight = Math.max(1, Math.min(FASHION_SIZE, Math.round(box.h * fit)));
  const fitted = resize(plane, box.w, box.h, newWidth, newHeight);
  const pixels = new Uint8Array(FASHION_SIZE * FASHION_SIZE);
  const left = (FASHION_SIZE - newWidth) >> 1;
  const top = (FASHION_SIZE - newHeight) >> 1;
  for (let y = 0; y < newHeight; y++) {
    for (let x = 0; x < newWidth; x++) pixels[(top + y) * FASHION_SIZE + left + x] = Math.min(255, Math.round(fitted[y * newWidth + x]));
  }
  return { pixels, inverted };
}

/**
 * A 28x28 image taken as it is (`--no-preprocess`): its luma, alpha ignored, nothing inverted,
 * cropped or moved. Throws a RangeError naming the size when it is not 28x28.
 */
export function asFashionMnist(image: RgbaImage): FashionImage {
  checkImage(image);
  if (image.width !== FASHION_SIZE || image.height !== FASHION_SIZE) {
    throw new RangeError(`${image.width}x${image.height}; without preprocessing it must be ${FASHION_SIZE}x${FASHION_SIZE}`);
  }
  const pixels = new Uint8Array(FASHION_SIZE * FASHION_SIZE);
  for (let p = 0; p < pixels.length; p++) pixels[p] = Math.round(luma(image.data[p * 4], image.data[p * 4 + 1], image.data[p * 4 + 2]));
  return { pixels, inverted: false };
}
