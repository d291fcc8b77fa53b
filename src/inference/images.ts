/**
 * Image files and bodies decoded to RGBA (PNG by pngjs, JPEG by jpeg-js, both plain JavaScript)
 * and brought to Fashion-MNIST's form by preprocess.ts. The size is read from the file's header
 * before anything is decoded, so a small file that claims a huge image is refused without
 * allocating it.
 */
import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
import { asFashionMnist, toFashionMnist, type FashionImage, type RgbaImage } from './preprocess.ts';

export type ImageFormat = 'png' | 'jpeg';

/** The default and the CLI's limit on an image's size: 50 megapixels (200 MB of RGBA). */
export const MAX_IMAGE_PIXELS = 50_000_000;

/**
 * Why an image could not be read: `unsupported` (not a PNG or JPEG), `corrupt` (truncated,
 * malformed, zero-size), `too-large` (over the pixel limit). The server answers 415, 400, 413.
 */
export class ImageError extends Error {
  constructor(
    message: string,
    readonly reason: 'unsupported' | 'corrupt' | 'too-large',
  ) {
    super(message);
    this.name = 'ImageError';
  }
}

export interface ImageOptions {
  /** Largest width x height accepted; default MAX_IMAGE_PIXELS. */
  maxPixels?: number;
  /** False: take a 28x28 image as it is (its luma), without inverting, cropping or fitting. */
  preprocess?: boolean;
}

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/** The format the bytes start with, or null. */
export function sniffFormat(bytes: Uint8Array): ImageFormat | null {
  if (bytes.length >= 8 && PNG_SIGNATURE.every((byte, i) => bytes[i] === byte)) return 'png';
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return 'jpeg';
  return null;
}

const corrupt = (format: ImageFormat, what: string) => new ImageError(`not a valid ${format.toUpperCase()} (${what})`, 'corrupt');

/** Width and height from a PNG's IHDR chunk (bytes 16..24). */
function pngSize(bytes: Uint8Array): { width: number; height: number } {
  if (bytes.length < 24 || String.fromCharCode(...bytes.subarray(12, 16)) !== 'IHDR') throw corrupt('png', 'no IHDR header');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return { width: view.getUint32(16), height: view.getUint32(20) };
}

/** Width and height from a JPEG's start-of-frame segment, walking the segments before it. */
function jpegSize(bytes: Uint8Array): { width: number; height: number } {
  let i = 2;
  while (i + 4 <= bytes.length) {
    if (bytes[i] !== 0xff) throw corrupt('jpeg', `no segment marker at byte ${i}`);
    const marker = bytes[i + 1];
    if (marker === 0xff) {
      i++; // fill byte
      continue;
    }
    if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd8)) {
      i += 2; // markers without a length
      continue;
    }
    const length = (bytes[i + 2] << 8) | bytes[i + 3];
    // SOF0..SOF15 but DHT (C4), JPG (C8) and DAC (CC): precision, height, width.
    const isFrame = marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;
    if (isFrame) {
      if (i + 9 > bytes.length) break;
      return { height: (bytes[i + 5] << 8) | bytes[i + 6], width: (bytes[i + 7] << 8) | bytes[i + 8] };
    }
    if (marker === 0xda || marker === 0xd9) throw corrupt('jpeg', 'no frame header before the image data');
    i += 2 + length;
  }
  throw corrupt('jpeg', 'truncated before the frame header');
}

/** The image's width and height from its header; throws an ImageError for anything that is not a PNG or JPEG of at least 1x1. */
export function imageSize(bytes: Uint8Array): { format: ImageFormat; width: number; height: number } {
  if (bytes.length === 0) throw new ImageError('empty (0 bytes)', 'corrupt');
  const format = sniffFormat(bytes);
  if (format === null) throw new ImageError('not a PNG or JPEG image', 'unsupported');
  const size = format === 'png' ? pngSize(bytes) : jpegSize(bytes);
  if (size.width === 0 || size.height === 0) throw corrupt(format, `its size is ${size.width}x${size.height}`);
  return { format, ...size };
}

/** PNG or JPEG bytes as RGBA pixels; throws an ImageError (unsupported, corrupt, too large). */
export function decodeImage(bytes: Uint8Array, options: Pick<ImageOptions, 'maxPixels'> = {}): RgbaImage {
  const maxPixels = options.maxPixels ?? MAX_IMAGE_PIXELS;
  const { format, width, height } = imageSize(bytes);
  if (width * height > maxPixels) {
    throw new ImageError(`${width}x${height} (${((width * height) / 1e6).toFixed(1)} megapixels), over the limit of ${(maxPixels / 1e6).toFixed(1)} megapixels`, 'too-large');
  }
  let image: RgbaImage;
  try {
    if (format === 'png') {
      const png = PNG.sync.read(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
      image = { width: png.width, height: png.height, data: png.data };
    } else {
      // Not tolerant: a truncated JPEG is an error rather than an image with grey blocks.
      const decoded = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: true, tolerantDecoding: false, maxResolutionInMP: maxPixels / 1e6, maxMemoryUsageInMB: 1024 });
      image = { width: decoded.width, height: decoded.height, data: decoded.data };
    }
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    // pngjs reports a file that ends early as a stream still waiting for data.
    throw corrupt(format, /waitng|waiting|finished stream|unexpected end/i.test(message) ? 'truncated' : message);
  }
  if (image.width !== width || image.height !== height || image.data.length !== width * height * 4) {
    throw corrupt(format, `decoded ${image.width}x${image.height} where the header says ${width}x${height}`);
  }
  return image;
}

/** PNG or JPEG bytes in Fashion-MNIST's form (see toFashionMnist; `preprocess: false` takes a 28x28 image as it is). */
export function fashionImage(bytes: Uint8Array, options: ImageOptions = {}): FashionImage {
  const image = decodeImage(bytes, options);
  if (options.preprocess === false) {
    try {
      return asFashionMnist(image);
    } catch (error) {
      throw new ImageError((error as Error).message, 'corrupt');
    }
  }
  return toFashionMnist(image);
}
