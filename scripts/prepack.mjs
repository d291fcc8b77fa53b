// Run by `npm pack` and `npm publish` (the "prepack" script), just before npm runs "prepare"
// (`npm run build`: the WebAssembly modules, then dist/ from tsc). It builds what the package
// carries beyond that build, from a clean dist/ so that nothing compiled from a source since
// removed is published:
//   dist/wasm/          the kernels, which the web app's build bundles (prepare writes them again,
//                       byte for byte the same)
//   generated/          the native addon's bindings (kernels.h, bindings.c), written by
//                       scripts/generate-kernels.ts on the way; the package's install script
//                       compiles them where there is no tsx to generate them
//   dist/web/           the web app, so that `fmnist app` works from an installed package
// What is published is the "files" list of package.json.
import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';

const run = (command, args) => {
  const result = spawnSync(command, args, { stdio: 'inherit' });
  if (result.status !== 0) {
    console.error(`prepack: ${[command, ...args].join(' ')} failed`);
    process.exit(1);
  }
};

rmSync('dist', { recursive: true, force: true });
run(process.execPath, ['scripts/build-wasm.mjs']);
// Inside npm scripts node_modules/.bin is on PATH.
run('vite', ['build']);
