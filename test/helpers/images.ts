import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
import type { RgbaImage } from '../../src/inference/preprocess.ts';

export function encodePng(image: RgbaImage): Buffer {
  return PNG.sync.write(Object.assign(new PNG({ width: image.width, height: image.height }), { data: Buffer.from(image.data) }));
}

export function encodeJpeg(image: RgbaImage, quality = 92): Buffer {
  return jpeg.encode({ width: image.width, height: image.height, data: image.data }, quality).data;
}

/** A 28x28 Fashion-MNIST image as opaque gray RGBA, as it is (light garment on black). */
export function grayImage(pixels: Uint8Array): RgbaImage {
  const data = new Uint8Array(pixels.length * 4);
  pixels.forEach((value, p) => data.set([value, value, value, 255], p * 4));
  return { width: 28, height: 28, data };
}

/**
 * A Fashion-MNIST image made to look like a product photo: enlarged 7 times (196x196, each
 * pixel a 7x7 block), negated to a dark-blue garment (luma close to the original's negation) on
 * white, placed at (2, 40) on a white 200x300 canvas.
 */
export function photoLike(pixels: Uint8Array): RgbaImage {
  const width = 200;
  const height = 300;
  const data = new Uint8Array(width * height * 4).fill(255);
  for (let y = 0; y < 196; y++) {
    for (let x = 0; x < 196; x++) {
      const value = pixels[Math.floor(y / 7) * 28 + Math.floor(x / 7)];
      data.set([255 - value, Math.max(0, 255 - value * 1.05), 255 - value * 0.7, 255], ((y + 40) * width + x + 2) * 4);
    }
  }
  return { width, height, data };
}
