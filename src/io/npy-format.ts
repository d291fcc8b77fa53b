/**
 * The .npy format as bytes, without file access (npy.ts reads and writes the files; the web
 * app decodes the saved test probabilities it fetches).
 */
import { UserError } from '../errors.ts';

/**
 * NumPy's .npy format, version 1.0, as numpy.load reads it: the magic "\x93NUMPY", version
 * bytes 1 and 0, a little-endian uint16 header length, a Python dict literal giving dtype,
 * order and shape, padded with spaces and a newline so the data starts on a 64-byte boundary,
 * then the raw little-endian C-order data.
 */
export type NpyArray = { dtype: 'float32'; shape: number[]; data: Float32Array } | { dtype: 'uint8'; shape: number[]; data: Uint8Array };

/** The header is ASCII: one byte a character, both ways. */
const latin1 = (text: string) => Uint8Array.from(text, (c) => c.charCodeAt(0));
const fromLatin1 = (bytes: Uint8Array) => Array.from(bytes, (byte) => String.fromCharCode(byte)).join('');

const MAGIC = [0x93, ...latin1('NUMPY')];
const DESCR = { float32: '<f4', uint8: '|u1' } as const;
/** Whether this machine stores numbers little-endian (the typed arrays' order), asked without Node's os module. */
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

export function encodeNpy(array: NpyArray): Uint8Array {
  if (!LITTLE_ENDIAN) throw new Error('.npy files are written little-endian; this machine is big-endian');
  const count = array.shape.reduce((a, b) => a * b, 1);
  if (count !== array.data.length) throw new Error(`shape [${array.shape.join(', ')}] does not fit ${array.data.length} values`);
  const shape = array.shape.length === 1 ? `(${array.shape[0]},)` : `(${array.shape.join(', ')})`;
  let header = `{'descr': '${DESCR[array.dtype]}', 'fortran_order': False, 'shape': ${shape}, }`;
  const unpadded = MAGIC.length + 2 + 2 + header.length + 1;
  header += ' '.repeat((64 - (unpadded % 64)) % 64) + '\n';
  const out = new Uint8Array(MAGIC.length + 4 + header.length + array.data.byteLength);
  out.set(MAGIC, 0);
  out[6] = 1;
  out[7] = 0;
  new DataView(out.buffer).setUint16(8, header.length, true);
  out.set(latin1(header), 10);
  out.set(new Uint8Array(array.data.buffer, array.data.byteOffset, array.data.byteLength), 10 + header.length);
  return out;
}

/** Whether the bytes start with the .npy magic string. */
export function isNpy(bytes: Uint8Array): boolean {
  return bytes.length >= MAGIC.length && MAGIC.every((byte, i) => bytes[i] === byte);
}

/** Decodes a .npy file's content of float32 or uint8 values in C order, as written by encodeNpy or numpy.save; `path` names it in messages. */
export function decodeNpy(bytes: Uint8Array, path: string): NpyArray {
  const fail = (what: string): never => {
    throw new UserError(`${path} is not a .npy file this program can read (${what}).`);
  };
  if (bytes.length < 10 || MAGIC.some((byte, i) => bytes[i] !== byte)) fail('no .npy magic');
  const major = bytes[6];
  if (major !== 1 && bytes.length < 12) fail('truncated header');
  const headerLength = major === 1 ? new DataView(bytes.buffer, bytes.byteOffset).getUint16(8, true) : new DataView(bytes.buffer, bytes.byteOffset).getUint32(8, true);
  const headerStart = major === 1 ? 10 : 12;
  const header = fromLatin1(bytes.subarray(headerStart, headerStart + headerLength));
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order':\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1];
  if (descr === undefined || fortran === undefined || shapeText === undefined) return fail('malformed header');
  if (fortran === 'True') fail('Fortran order');
  const shape = shapeText.split(',').map((s) => s.trim()).filter((s) => s !== '').map(Number);
  const count = shape.reduce((a, b) => a * b, 1);
  const start = headerStart + headerLength;
  if (descr === '<f4') {
    if (bytes.length - start !== count * 4) fail('data length does not match the shape');
    const data = new Float32Array(count);
    new Uint8Array(data.buffer).set(bytes.subarray(start, start + count * 4));
    return { dtype: 'float32', shape, data };
  }
  if (descr === '|u1' || descr === '<u1') {
    if (bytes.length - start !== count) fail('data length does not match the shape');
    return { dtype: 'uint8', shape, data: Uint8Array.from(bytes.subarray(start)) };
  }
  return fail(`dtype ${descr}; float32 and uint8 are supported`);
}
