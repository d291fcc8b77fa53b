/**
 * The WebAssembly backend's use of its memory around a kernel call: arrays from outside the
 * memory copied in and back out, and the blocks its kernels work in, which grow on demand and
 * are kept from call to call.
 */
import type { MemoryArena } from './memory.ts';

/**
 * Arrays that lie outside the module's memory (the host's bytes and ints, a caller's own
 * Float32Array), copied in for one kernel call and, when the kernel writes them, back out after
 * it. Arrays of the memory are used in place.
 */
export class Staging {
  private readonly staged: { array: ArrayBufferView; offset: number; writeBack: boolean }[] = [];

  constructor(private readonly arena: MemoryArena) {}

  /** The byte offset in the memory at which the kernel finds `array`. */
  pointer(array: ArrayBufferView, writeBack: boolean): number {
    if (this.arena.owns(array)) return array.byteOffset;
    const offset = this.arena.reserve(array.byteLength);
    this.arena.bytes().set(new Uint8Array(array.buffer, array.byteOffset, array.byteLength), offset);
    this.staged.push({ array, offset, writeBack });
    return offset;
  }

  /** After the call: copies written arrays back out and gives every copy's block back. */
  finish(): void {
    const bytes = this.arena.bytes();
    for (const { array, offset, writeBack } of this.staged) {
      if (writeBack) new Uint8Array(array.buffer, array.byteOffset, array.byteLength).set(bytes.subarray(offset, offset + array.byteLength));
      this.arena.release(offset, array.byteLength);
    }
    this.staged.length = 0;
  }
}

/** A block of the memory that grows to the largest size asked for and is kept: a work area of the kernels. */
export class GrowingBlock {
  offset = 0;
  bytes = 0;

  constructor(private readonly arena: MemoryArena) {}

  /** Grows the block to at least `bytes`, zero-filled if `zeroed`; returns its offset. */
  grow(bytes: number, zeroed = false): number {
    if (this.bytes >= bytes) return this.offset;
    if (this.bytes > 0) this.arena.release(this.offset, this.bytes);
    this.offset = this.arena.reserve(bytes);
    this.bytes = bytes;
    if (zeroed) this.arena.bytes().fill(0, this.offset, this.offset + bytes);
    return this.offset;
  }
}

/** A growing block per thread, side by side: column matrices, partial sums. */
export class PerThreadBlock {
  private readonly block: GrowingBlock;
  private perThread = 0;

  constructor(
    arena: MemoryArena,
    private readonly threads: number,
  ) {
    this.block = new GrowingBlock(arena);
  }

  /** Makes each thread's block at least `bytesPerThread`. */
  reserve(bytesPerThread: number): void {
    if (this.block.bytes >= bytesPerThread * this.threads) return;
    this.block.grow(bytesPerThread * this.threads);
    this.perThread = bytesPerThread;
  }

  /** Byte offset of thread `thread`'s block. */
  of(thread: number): number {
    return this.block.offset + thread * this.perThread;
  }
}
