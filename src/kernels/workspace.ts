/**
 * Buffers kept from one call to the next: a classifier evaluates one image after another, and
 * allocating and releasing its buffers at every call cost time (and, before the buffers had
 * lifetimes, the WebAssembly arena's memory). Each buffer is held under a name and grown when a
 * call needs more; `dispose` gives them all back.
 */
import type { Kernels, Tensor } from './types.ts';

export class Workspace {
  private readonly held = new Map<string, Tensor>();

  constructor(private readonly kernels: Kernels) {}

  /** The buffer `name`, at least `size` floats (its first `size` are the caller's; their values are whatever the last call left). */
  take(name: string, size: number): Tensor {
    const tensor = this.held.get(name);
    if (tensor && tensor.length >= size) return tensor.length === size ? tensor : tensor.subarray(0, size);
    if (tensor) this.kernels.release(tensor);
    const grown = this.kernels.allocate(size);
    this.held.set(name, grown);
    return grown;
  }

  /** Gives every buffer back; the workspace may be used again afterwards (it allocates anew). */
  dispose(): void {
    for (const tensor of this.held.values()) this.kernels.release(tensor);
    this.held.clear();
  }
}
