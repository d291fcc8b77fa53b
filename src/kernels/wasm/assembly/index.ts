// The WebAssembly kernels, in AssemblyScript, a file per concern. The module's entry
// (generated/wasm-exports.ts, written from src/kernels/spec.ts by scripts/generate-kernels.ts)
// imports this file and exports each declared function with its declared signature, so
// nothing here becomes an export by itself. Compiled twice by scripts/build-wasm.mjs: with
// SIMD128 (kernels.wasm) and with relaxed SIMD too (kernels-relaxed.wasm), where the matrix
// product's multiply-add is one fused instruction. Every pointer is a byte offset into the
// shared linear memory; every size counts elements.

export * from './addresses';
export * from './gemm';
export * from './elementwise';
export * from './pixels';
export * from './dropout';
export * from './loss';
export * from './optimizers';
export * from './im2col';
export * from './winograd';
export * from './pooling';
export * from './batchnorm';
