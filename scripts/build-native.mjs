// Builds the native backend (native/*.c, with the bindings that scripts/generate-kernels.ts
// derives from src/kernels/spec.ts) with node-gyp when a C compiler is present; otherwise says
// why and succeeds all the same, and the engine
// uses its WebAssembly backend. Run by `npm install` / `npm ci` (the "install" script), in this
// repository and in a project that installs the package.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

const skip = (reason) => {
  console.log(`fmnist: the native backend is not built (${reason}); the WebAssembly backend will be used.`);
  process.exit(0);
};

if (process.env.FMNIST_SKIP_NATIVE) skip('FMNIST_SKIP_NATIVE is set');
if (process.platform !== 'linux') skip(`it is built on Linux only, this is ${process.platform}`);
if (spawnSync('cc', ['--version'], { stdio: 'ignore' }).status !== 0) skip('there is no C compiler (cc): install build-essential');

// In a checkout the bindings are generated from the declarations now, through tsx (a dev
// dependency). An installed package has neither: it carries generated/kernels.h and bindings.c,
// written when it was packed (the "prepack" script's build).
if (existsSync('scripts/generate-kernels.ts')) {
  const generated = spawnSync(process.execPath, ['--import', 'tsx', 'scripts/generate-kernels.ts'], { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
  if (generated.status !== 0) skip(`generating the kernel bindings failed: ${`${generated.stderr}`.trim().split('\n').slice(-1)[0]}`);
} else if (!existsSync('generated/kernels.h') || !existsSync('generated/bindings.c')) {
  skip('the package lacks generated/kernels.h and generated/bindings.c, which npm pack should have written');
}

// Inside npm scripts node-gyp is on PATH; npm passes its nodedir setting to it.
const result = spawnSync('node-gyp', ['rebuild'], { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8', shell: process.platform === 'win32' });
if (result.error) skip(`node-gyp could not run: ${result.error.message}`);
if (result.status !== 0) {
  const lastError = `${result.stderr}`.split('\n').filter((line) => /error/i.test(line)).slice(-1)[0] ?? `exit code ${result.status}`;
  skip(`node-gyp failed: ${lastError.trim()}`);
}
console.log('fmnist: built the native backend (build/Release/fmnist_native.node).');
