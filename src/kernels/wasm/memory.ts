/** Bytes per WebAssembly page. */
const PAGE = 65536;
/** Every block starts on a 64-byte boundary (a cache line; f32x4 loads need 16). */
const ALIGN = 64;
/** The most pages the kernel modules declare (build-wasm.mjs: --maximumMemory). */
export const MAX_PAGES = 32768;

/**
 * Hands out blocks of a WebAssembly memory. Blocks are reused by exact size: training
 * allocates the same sizes over and over (one batch's buffers), so a free list per size
 * suffices. Freed blocks come back through `release` or, for the Float32Arrays the backend
 * gives out, when the array object is garbage-collected.
 */
export class MemoryArena {
  private top: number;
  private readonly freeBySize = new Map<number, number[]>();
  /** Every SharedArrayBuffer object the memory has had; growing it gives a new one over the same bytes. */
  private readonly buffers = new Set<ArrayBufferLike>();
  private readonly registry = new FinalizationRegistry<{ offset: number; bytes: number }>(({ offset, bytes }) =>
    this.release(offset, bytes),
  );

  constructor(
    readonly memory: WebAssembly.Memory,
    /** First byte the arena may use; below it lie the thread control block and the module's static data. */
    start: number,
  ) {
    this.top = roundUp(start, ALIGN);
    this.buffers.add(memory.buffer);
  }

  /** Whether `array` is a view of this memory, so a kernel can use it in place. */
  owns(array: ArrayBufferView): boolean {
    return this.buffers.has(array.buffer);
  }

  /** Byte offset of a new block of at least `bytes` bytes. */
  reserve(bytes: number): number {
    const size = roundUp(Math.max(bytes, 1), ALIGN);
    const reused = this.freeBySize.get(size)?.pop();
    if (reused !== undefined) return reused;
    const offset = this.top;
    const end = offset + size;
    const have = this.memory.buffer.byteLength;
    if (end > have) {
      const pages = Math.ceil((end - have) / PAGE);
      if (have / PAGE + pages > MAX_PAGES) {
        throw new RangeError(`the WebAssembly memory is full (${MAX_PAGES * (PAGE / 2 ** 20)} MiB); use smaller batches or the js backend`);
      }
      this.memory.grow(pages);
      this.buffers.add(this.memory.buffer);
    }
    this.top = end;
    return offset;
  }

  release(offset: number, bytes: number): void {
    const size = roundUp(Math.max(bytes, 1), ALIGN);
    const list = this.freeBySize.get(size);
    if (list) list.push(offset);
    else this.freeBySize.set(size, [offset]);
  }

  /**
   * A zero-filled Float32Array over a new block. The block is freed when the returned array
   * object is collected, so keep that object (not only subarrays of it) while the memory is used.
   */
  allocateFloats(length: number): Float32Array {
    const bytes = length * 4;
    const offset = this.reserve(bytes);
    const array = new Float32Array(this.memory.buffer, offset, length);
    array.fill(0);
    this.registry.register(array, { offset, bytes });
    return array;
  }

  /** Views of the whole memory; call again after anything may have grown it. */
  floats(): Float32Array {
    return new Float32Array(this.memory.buffer);
  }

  bytes(): Uint8Array {
    return new Uint8Array(this.memory.buffer);
  }
}

function roundUp(value: number, multiple: number): number {
  return Math.ceil(value / multiple) * multiple;
}
