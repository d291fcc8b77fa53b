/**
 * STAND-IN for the shared preprocessing of `fmnist predict` (src/inference/images.ts, written
 * elsewhere): to be replaced by that module's function of the same signature when merging.
 *
 * A picture in Fashion-MNIST's form: grayscale; a light background (the border's mean above
 * half) inverted so the garment is light on dark; cropped to the object (pixels brighter than a
 * tenth of the brightest); scaled so its longer side is 28 pixels, keeping the aspect ratio; and
 * centred in 28x28.
 */
const SIDE = 28;

/** Luminance 0..255 of each pixel, transparent parts over white (as a page shows them). */
function grayscale(rgba: Uint8ClampedArray, width: number, height: number): Float32Array {
  const gray = new Float32Array(width * height);
  for (let i = 0; i < gray.length; i++) {
    const alpha = rgba[4 * i + 3] / 255;
    const luminance = 0.299 * rgba[4 * i] + 0.587 * rgba[4 * i + 1] + 0.114 * rgba[4 * i + 2];
    gray[i] = luminance * alpha + 255 * (1 - alpha);
  }
  return gray;
}

function borderMean(gray: Float32Array, width: number, height: number): number {
  let sum = 0;
  let count = 0;
  for (let x = 0; x < width; x++) {
    sum += gray[x] + gray[(height - 1) * width + x];
    count += 2;
  }
  for (let y = 1; y < height - 1; y++) {
    sum += gray[y * width] + gray[y * width + width - 1];
    count += 2;
  }
  return sum / count;
}

/** Fashion-MNIST's 28x28 bytes (light garment on dark) of an RGBA picture, and whether it was inverted. */
export function toFashionMnist(rgba: Uint8ClampedArray, width: number, height: number): { pixels: Uint8Array; inverted: boolean } {
  const gray = grayscale(rgba, width, height);
  const inverted = borderMean(gray, width, height) > 127;
  if (inverted) for (let i = 0; i < gray.length; i++) gray[i] = 255 - gray[i];
  // The object: the box around every pixel brighter than a tenth of the brightest.
  let brightest = 0;
  for (const value of gray) brightest = Math.max(brightest, value);
  const pixels = new Uint8Array(SIDE * SIDE);
  if (brightest < 8) return { pixels, inverted };
  let left = width;
  let right = -1;
  let top = height;
  let bottom = -1;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      if (gray[y * width + x] <= brightest / 10) continue;
      left = Math.min(left, x);
      right = Math.max(right, x);
      top = Math.min(top, y);
      bottom = Math.max(bottom, y);
    }
  }
  const boxWidth = right - left + 1;
  const boxHeight = bottom - top + 1;
  // Longer side to 28 pixels; each output pixel the mean of the source area it covers.
  const scale = SIDE / Math.max(boxWidth, boxHeight);
  const outWidth = Math.max(1, Math.round(boxWidth * scale));
  const outHeight = Math.max(1, Math.round(boxHeight * scale));
  const offsetX = Math.floor((SIDE - outWidth) / 2);
  const offsetY = Math.floor((SIDE - outHeight) / 2);
  for (let oy = 0; oy < outHeight; oy++) {
    const y0 = top + oy / scale;
    const y1 = Math.min(top + (oy + 1) / scale, bottom + 1);
    for (let ox = 0; ox < outWidth; ox++) {
      const x0 = left + ox / scale;
      const x1 = Math.min(left + (ox + 1) / scale, right + 1);
      pixels[(offsetY + oy) * SIDE + offsetX + ox] = Math.round(areaMean(gray, width, x0, x1, y0, y1));
    }
  }
  return { pixels, inverted };
}

/** Mean of `gray` over the rectangle [x0, x1) x [y0, y1), partial pixels weighted by their covered share. */
function areaMean(gray: Float32Array, width: number, x0: number, x1: number, y0: number, y1: number): number {
  let sum = 0;
  let area = 0;
  for (let y = Math.floor(y0); y < Math.ceil(y1); y++) {
    const wy = Math.min(y + 1, y1) - Math.max(y, y0);
    for (let x = Math.floor(x0); x < Math.ceil(x1); x++) {
      const w = wy * (Math.min(x + 1, x1) - Math.max(x, x0));
      sum += gray[y * width + x] * w;
      area += w;
    }
  }
  return area > 0 ? sum / area : 0;
}
