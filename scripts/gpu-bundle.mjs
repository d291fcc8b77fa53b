// Bundles the WebGPU benchmark (bench/webgpu.ts, the pipeline included) into one file for a
// machine without Node's packages (scripts/gpu-bench.sh pack). The native packages it never
// reaches (ONNX Runtime, SQLite, the charts' renderer) are stubs; `webgpu` stays a package,
// carried beside the bundle with its linux-x64 binary only.
import { build } from 'esbuild';

const STUBS = {
  'onnxruntime-node': 'export const InferenceSession = undefined, Tensor = undefined, env = {};',
  'better-sqlite3': 'export default undefined;',
  '@resvg/resvg-js': 'export const Resvg = undefined;',
};

await build({
  stdin: {
    contents: "import { benchWebGpu } from './bench/webgpu.ts';\nawait benchWebGpu((record) => console.log(JSON.stringify(record)), { pipeline: true });\n",
    resolveDir: process.cwd(),
    sourcefile: 'gpu-bench-entry.ts',
    loader: 'ts',
  },
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  outfile: process.argv[2],
  external: ['webgpu', 'pg-native'],
  // Packages bundled as ES modules still call require() for Node's own modules.
  banner: { js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);" },
  plugins: [
    {
      name: 'stubs',
      setup(build) {
        build.onResolve({ filter: /^(onnxruntime-node|better-sqlite3|@resvg\/resvg-js)$/ }, (args) => ({ path: args.path, namespace: 'stub' }));
        build.onLoad({ filter: /.*/, namespace: 'stub' }, (args) => ({ contents: STUBS[args.path], loader: 'js' }));
      },
    },
  ],
  logLevel: 'warning',
});
