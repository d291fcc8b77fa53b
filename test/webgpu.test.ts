// The WebGPU backend on SwiftShader (Debian's chromium ships its Vulkan driver: WebGPU on the
// CPU), which CI installs: the shared kernel suite, for both ways the products run (tiled for
// GPUs, direct for SwiftShader itself), training against the native backend's figures, and
// models read across backends.
import { existsSync } from 'node:fs';
import { loadWebGpuKernels, SWIFTSHADER_DRIVER } from '../src/kernels/webgpu/node.ts';
import { kernelSuite } from './helpers/kernel-suite.ts';

const required = process.env.FMNIST_REQUIRE_BROWSER === '1';
if (!existsSync(SWIFTSHADER_DRIVER) && required) throw new Error(`SwiftShader's Vulkan driver is missing (${SWIFTSHADER_DRIVER}); install chromium`);
process.env.VK_DRIVER_FILES ??= SWIFTSHADER_DRIVER;
const available = existsSync(SWIFTSHADER_DRIVER);

if (available) {
  kernelSuite(await loadWebGpuKernels({ products: 'tiled' }));
  kernelSuite(await loadWebGpuKernels({ products: 'direct' }));
}
