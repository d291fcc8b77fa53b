import { UserError } from '../errors.ts';

/** IDX magic numbers: 0x00000803 (unsigned byte, 3 dimensions) and 0x00000801 (1 dimension). */
export const IMAGES_MAGIC = 2051;
export const LABELS_MAGIC = 2049;
export const IMAGE_SIZE = 28;
/** One image as the CNN sees it: [height, width, channels]. */
export const IMAGE_SHAPE: readonly number[] = [IMAGE_SIZE, IMAGE_SIZE, 1];
export const PIXELS = IMAGE_SIZE * IMAGE_SIZE;
export const NUM_CLASSES = 10;

const GZIP_SIGNATURE_0 = 0x1f;
const GZIP_SIGNATURE_1 = 0x8b;

/** Whether a file's content starts with the gzip signature (the `.gz` files), so must be gunzipped first. */
export function isGzipped(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === GZIP_SIGNATURE_0 && bytes[1] === GZIP_SIGNATURE_1;
}

/** The error for content that starts like gzip but does not decompress (Node's zlib and a browser's DecompressionStream alike). */
export function invalidGzip(fileName: string, reason: string): UserError {
  return new UserError(`${fileName} is not a valid gzip file (${reason}); it is probably truncated or corrupt, so replace it with a fresh copy.`);
}

/**
 * Parses an IDX images file: magic 2051, then big-endian count, rows, columns, then
 * count x 28 x 28 unsigned bytes. Returns the pixels as one Uint8Array [count, 784].
 */
export function parseIdxImages(bytes: Uint8Array, fileName: string): { count: number; pixels: Uint8Array } {
  const header = readHeader(bytes, fileName, IMAGES_MAGIC, 16, 'images');
  const count = header.getUint32(4);
  const rows = header.getUint32(8);
  const cols = header.getUint32(12);
  if (rows !== IMAGE_SIZE || cols !== IMAGE_SIZE) {
    throw new UserError(`${fileName} holds ${rows}x${cols} images, but Fashion-MNIST images are 28x28.`);
  }
  checkLength(bytes, fileName, 16 + count * PIXELS, `${count} images`);
  return { count, pixels: bytes.subarray(16) };
}

/**
 * Parses an IDX labels file: magic 2049, then a big-endian count, then count bytes,
 * each a class index in 0..9.
 */
export function parseIdxLabels(bytes: Uint8Array, fileName: string): Uint8Array {
  const header = readHeader(bytes, fileName, LABELS_MAGIC, 8, 'labels');
  const count = header.getUint32(4);
  checkLength(bytes, fileName, 8 + count, `${count} labels`);
  const labels = bytes.subarray(8);
  for (let i = 0; i < labels.length; i++) {
    if (labels[i] >= NUM_CLASSES) {
      throw new UserError(
        `${fileName} has label ${labels[i]} at position ${i}, but labels must be 0..9; the file is not a Fashion-MNIST labels file.`,
      );
    }
  }
  return labels;
}

function readHeader(bytes: Uint8Array, fileName: string, magic: number, headerBytes: number, what: string): DataView {
  if (bytes.length < headerBytes) {
    throw new UserError(`${fileName} is ${bytes.length} bytes long, too short for an IDX ${what} header.`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, headerBytes);
  const found = view.getUint32(0);
  if (found !== magic) {
    throw new UserError(
      `${fileName} has magic number ${found}, but an IDX ${what} file starts with ${magic}; check that it is the right file.`,
    );
  }
  return view;
}

function checkLength(bytes: Uint8Array, fileName: string, expected: number, what: string): void {
  if (bytes.length !== expected) {
    throw new UserError(
      `${fileName} is ${bytes.length} bytes long, but its header announces ${what} (${expected} bytes); the file is truncated or corrupt.`,
    );
  }
}
