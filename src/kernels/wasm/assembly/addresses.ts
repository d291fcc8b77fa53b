// Addresses in the shared linear memory, where every pointer is a byte offset.

/** First byte after the module's static data: the caller's buffers go from here. */
export function heapBase(): usize {
  return __heap_base;
}

/** The address of float `index` from `ptr`. */
@inline export function at(ptr: usize, index: i32): usize {
  return ptr + (<usize>index << 2);
}
