/**
 * The safetensors format (as Hugging Face's `safetensors` library reads it): an 8-byte
 * little-endian header length, a JSON header naming each tensor's dtype, shape and byte
 * range, padded with spaces to a multiple of 8, then the raw little-endian tensor bytes.
 */
export interface NamedTensor {
  name: string;
  shape: readonly number[];
  /** Float32Array is written as F32, Int32Array as I32. */
  data: Float32Array | Int32Array;
}

interface HeaderEntry {
  dtype: string;
  shape: number[];
  data_offsets: [number, number];
}

/** Whether this machine stores numbers little-endian (the typed arrays' order), asked without Node's os module so a browser can run this file. */
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function requireLittleEndian(): void {
  if (!LITTLE_ENDIAN) throw new Error('safetensors files are little-endian; this machine is big-endian');
}

export function encodeSafetensors(tensors: readonly NamedTensor[], metadata: Record<string, string> = {}): Uint8Array {
  requireLittleEndian();
  const header: Record<string, HeaderEntry | Record<string, string>> = { __metadata__: metadata };
  let offset = 0;
  for (const tensor of tensors) {
    const bytes = tensor.data.length * 4;
    const dtype = tensor.data instanceof Int32Array ? 'I32' : 'F32';
    header[tensor.name] = { dtype, shape: [...tensor.shape], data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  // Padded with spaces (one byte each in UTF-8) to a multiple of 8 bytes.
  const headerBytes = new Uint8Array(json.length + ((8 - (json.length % 8)) % 8)).fill(0x20);
  headerBytes.set(json);
  const out = new Uint8Array(8 + headerBytes.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerBytes.length), true);
  out.set(headerBytes, 8);
  let position = 8 + headerBytes.length;
  for (const tensor of tensors) {
    out.set(new Uint8Array(tensor.data.buffer, tensor.data.byteOffset, tensor.data.length * 4), position);
    position += tensor.data.length * 4;
  }
  return out;
}

/** Parses a safetensors file holding F32 and I32 tensors; throws a message naming `fileName` when malformed. */
export function decodeSafetensors(bytes: Uint8Array, fileName: string): { tensors: Map<string, NamedTensor>; metadata: Record<string, string> } {
  requireLittleEndian();
  const fail = (what: string): never => {
    throw new Error(`${fileName} is not a valid safetensors file: ${what}`);
  };
  if (bytes.length < 8) fail('too short');
  const headerLength = Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true));
  if (8 + headerLength > bytes.length) fail('header runs past the end of the file');
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerLength))) as Record<string, unknown>;
  } catch {
    return fail('header is not JSON');
  }
  const dataStart = 8 + headerLength;
  const tensors = new Map<string, NamedTensor>();
  for (const [name, value] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const entry = value as HeaderEntry;
    if (entry.dtype !== 'F32' && entry.dtype !== 'I32') fail(`tensor ${name} has dtype ${entry.dtype}, only F32 and I32 are supported`);
    const [begin, end] = entry.data_offsets;
    const count = entry.shape.reduce((a, b) => a * b, 1);
    if (end - begin !== count * 4 || dataStart + end > bytes.length) fail(`tensor ${name} has a wrong byte range`);
    // A view of the bytes where the tensor starts at a multiple of 4 bytes (as files written here
    // do), else a copy into an aligned buffer (the format does not promise the alignment).
    const at = bytes.byteOffset + dataStart + begin;
    const Type = entry.dtype === 'I32' ? Int32Array : Float32Array;
    let data: Int32Array | Float32Array;
    if (at % 4 === 0) {
      data = new Type(bytes.buffer as ArrayBuffer, at, count);
    } else {
      data = new Type(count);
      new Uint8Array(data.buffer).set(bytes.subarray(dataStart + begin, dataStart + end));
    }
    tensors.set(name, { name, shape: entry.shape, data });
  }
  return { tensors, metadata: (header.__metadata__ as Record<string, string> | undefined) ?? {} };
}
