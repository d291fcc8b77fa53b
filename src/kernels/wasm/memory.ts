/** Bytes per WebAssembly page. */
const PAGE = 65536;
/** Every block starts on a 64-byte boundary (a cache line; f32x4 loads need 16). */
const ALIGN = 64;
/** The most pages the kernel modules declare (build-wasm.mjs: --maximumMemory). */
export const MAX_PAGES = 32768;

/** Where an array handed out by `allocateFloats` lies in the memory. */
interface Block {
  offset: number;
  bytes: number;
}

/**
 * Hands out blocks of a WebAssembly memory. Blocks are reused by exact size: training
 * allocates the same sizes over and over (one batch's buffers), so a free list per size
 * suffices. Blocks come back through `release`, and the Float32Arrays of `allocateFloats`
 * through `releaseFloats`. The memory never shrinks, and garbage collection cannot be relied on
 * to return blocks: V8 sees only the small array objects, not the memory they hold, so a loop
 * that allocated per call filled the 2 GiB within seconds without ever collecting them (the
 * callers release explicitly; collection remains a backstop for arrays a user drops).
 */
export class MemoryArena {
  private top: number;
  private readonly freeBySize = new Map<number, number[]>();
  /** Every SharedArrayBuffer object the memory has had; growing it gives a new one over the same bytes. */
  private readonly buffers = new Set<ArrayBufferLike>();
  /** The block of each live array of allocateFloats; also the token that unregisters it from the backstop. */
  private readonly blocks = new WeakMap<Float32Array, Block>();
  private readonly registry = new FinalizationRegistry<Block>(({ offset, bytes }) => this.release(offset, bytes));
  private liveBytes = 0;

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
    if (reused !== undefined) {
      this.liveBytes += size;
      return reused;
    }
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
    this.liveBytes += size;
    return offset;
  }

  release(offset: number, bytes: number): void {
    const size = roundUp(Math.max(bytes, 1), ALIGN);
    this.liveBytes -= size;
    const list = this.freeBySize.get(size);
    if (list) list.push(offset);
    else this.freeBySize.set(size, [offset]);
  }

  /**
   * A zero-filled Float32Array over a new block, given back by `releaseFloats` (or, failing
   * that, when the array object is collected: keep that object, not only subarrays of it,
   * while the memory is used).
   */
  allocateFloats(length: number): Float32Array {
    const block = { offset: this.reserve(length * 4), bytes: length * 4 };
    const array = new Float32Array(this.memory.buffer, block.offset, length);
    array.fill(0);
    this.blocks.set(array, block);
    this.registry.register(array, block, block);
    return array;
  }

  /**
   * Gives back the block of an array from `allocateFloats`, which must not be used afterwards.
   * Releasing it twice, or an array the arena did not hand out, is a programming error.
   */
  releaseFloats(array: Float32Array): void {
    const block = this.blocks.get(array);
    if (!block) throw new Error('release: the array was not allocated by this backend, or was released already');
    this.blocks.delete(array);
    this.registry.unregister(block);
    this.release(block.offset, block.bytes);
  }

  /** Bytes of the memory in use by blocks, and the memory's size (which never shrinks). */
  usage(): { liveBytes: number; memoryBytes: number } {
    return { liveBytes: this.liveBytes, memoryBytes: this.memory.buffer.byteLength };
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
