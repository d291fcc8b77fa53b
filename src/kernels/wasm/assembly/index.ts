// The WebAssembly kernels, in AssemblyScript: every function the module's entry
// (generated/wasm-exports.ts, written from src/kernels/spec.ts) calls, by file. Helpers shared
// between files, such as `at`, are exported from their file but not from here. Compiled twice by
// scripts/build-wasm.mjs: with SIMD128 (kernels.wasm) and with relaxed SIMD too
// (kernels-relaxed.wasm), where the matrix product's multiply-add is one fused instruction.
// Every pointer is a byte offset into the shared linear memory; every size counts elements.

export { heapBase } from './addresses';
export { gemmScratchFloats, gemm } from './gemm';
export { addBias, sumRows, relu, reluBackward, zero, multiply } from './elementwise';
export { scalePixels } from './pixels';
export { dropoutMask } from './dropout';
export { softmaxCrossEntropy, softmaxCrossEntropyBackward } from './loss';
export { sgdStep, adamUpdate } from './optimizers';
export { conv2dForward, conv2dBackwardInput, conv2dBackwardWeight, addTransposed } from './im2col';
export {
  winogradBufferFloats, winogradFilters, winogradForward, winogradWeight, winogradFilterGradient,
} from './winograd';
export { maxPool2x2, maxPool2x2Backward } from './pooling';
export { batchNormStatistics, batchNormForward, batchNormBackwardSums, batchNormBackward, channelAffine } from './batchnorm';
