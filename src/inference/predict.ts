/**
 * `fmnist predict` as a library function: people's image files (PNG, JPEG) and arrays of
 * Fashion-MNIST images (.npy), classified by one model or a pipeline's three. A file that
 * cannot be read is reported with its reason and the others are still answered.
 */
import { readFileSync, statSync } from 'node:fs';
import { IMAGE_SIZE, PIXELS } from '../data/idx.ts';
import { UserError } from '../errors.ts';
import { decodeNpy, isNpy } from '../io/npy.ts';
import { topClasses, type ClassScore, type ImageClassifier } from './classifier.ts';
import { fashionImage, ImageError, type ImageOptions } from './images.ts';
import type { FashionImage } from './preprocess.ts';

/** Files larger than this are refused before they are read (a .npy of 300,000 images fits). */
const MAX_FILE_BYTES = 256 * 2 ** 20;

export interface PredictOptions extends ImageOptions {
  /** Classes to list per image and model, most probable first; default 3. */
  top?: number;
}

export interface ImagePrediction {
  /** The image's index in its file: 0 for a PNG or JPEG, its row for a .npy. */
  index: number;
  /** Whether preprocessing negated it (a light background). */
  inverted: boolean;
  /** One entry per model, in the order of the classifiers. */
  models: { model: string; top: ClassScore[] }[];
}

/** A file's predictions, or the one-sentence reason it could not be read. */
export type FilePrediction = { file: string; images: ImagePrediction[] } | { file: string; error: string };

/**
 * The images of a file in Fashion-MNIST's form: one for a PNG or JPEG (preprocessed unless
 * `preprocess` is false), every image of a .npy of uint8 [N, 28, 28] (taken as they are).
 * Throws a UserError naming the file.
 */
export function readFashionImages(path: string, options: ImageOptions = {}): FashionImage[] {
  let bytes: Uint8Array;
  try {
    const stat = statSync(path);
    if (!stat.isFile()) throw new UserError(`${path}: not a file`);
    if (stat.size > MAX_FILE_BYTES) throw new UserError(`${path}: ${(stat.size / 2 ** 20).toFixed(0)} MiB, over the limit of ${MAX_FILE_BYTES / 2 ** 20} MiB`);
    bytes = readFileSync(path);
  } catch (error) {
    if (error instanceof UserError) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : (error as Error).message;
    throw new UserError(`${path}: cannot be read (${why})`);
  }
  if (isNpy(bytes)) return npyImages(bytes, path);
  try {
    return [fashionImage(bytes, options)];
  } catch (error) {
    if (error instanceof ImageError) throw new UserError(`${path}: ${error.message}`);
    throw error;
  }
}

/** A .npy of uint8 images [N, 28, 28] (or one [28, 28]) as Fashion-MNIST images. */
function npyImages(bytes: Uint8Array, path: string): FashionImage[] {
  const array = decodeNpy(bytes, path);
  const shape = array.shape.length === 2 ? [1, ...array.shape] : array.shape;
  if (array.dtype !== 'uint8' || shape.length !== 3 || shape[1] !== IMAGE_SIZE || shape[2] !== IMAGE_SIZE || shape[0] < 1) {
    throw new UserError(`${path}: holds ${array.dtype} [${array.shape.join(', ')}]; predict reads uint8 images [N, 28, 28]`);
  }
  return Array.from({ length: shape[0] }, (_, i) => ({ pixels: array.data.subarray(i * PIXELS, (i + 1) * PIXELS) as Uint8Array, inverted: false }));
}

/**
 * Every file's images classified by every classifier. All images go through each classifier in
 * one call (it batches them), so many small files cost one forward pass per batch, not per file.
 */
export async function predictFiles(classifiers: readonly ImageClassifier[], files: readonly string[], options: PredictOptions = {}): Promise<FilePrediction[]> {
  const read = files.map((file): { file: string; images: FashionImage[] } | { file: string; error: string } => {
    try {
      return { file, images: readFashionImages(file, options) };
    } catch (error) {
      if (error instanceof UserError) return { file, error: error.message };
      throw error;
    }
  });
  const images = read.flatMap((entry) => ('images' in entry ? entry.images : []));
  const pixels = new Uint8Array(images.length * PIXELS);
  images.forEach((image, i) => pixels.set(image.pixels, i * PIXELS));
  const probabilities: Float32Array[] = [];
  for (const classifier of classifiers) probabilities.push(images.length === 0 ? new Float32Array(0) : await classifier.classify(pixels, images.length));
  let next = 0;
  return read.map((entry) => {
    if (!('images' in entry)) return entry;
    return {
      file: entry.file,
      images: entry.images.map((image, index) => {
        const row = next++;
        return {
          index,
          inverted: image.inverted,
          models: classifiers.map((classifier, m) => ({ model: classifier.name, top: topClasses(probabilities[m], row, classifier.classNames, options.top ?? 3) })),
        };
      }),
    };
  });
}
