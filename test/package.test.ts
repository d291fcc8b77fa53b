/**
 * The package as another project gets it. `npm pack` of a copy of this checkout (so that its
 * "prepack" and "prepare" builds run as they do before a publish, away from the dist/ the other
 * tests read), the tarball's file list, then an install into an empty project from npm's cache
 * only (--offline: no network), where the README's library example is type-checked under strict
 * with nodenext resolution and run with small settings, and `npx fmnist --help` and
 * `npx fmnist predict` answer; then the package installed again there with no C compiler on
 * PATH: the install succeeds, saying so in one line, and the example trains on WebAssembly. And a
 * fresh resolution of the package's dependencies, whose every package must accept each Node
 * version that "engines" promises.
 *
 * The installs use the versions of package-lock.json (the consumer's lockfile is made from it),
 * so that npm's cache, which `npm ci` filled, holds every tarball; the fresh resolution needs only
 * the registry's metadata, which `npm ci` cached as well (--prefer-offline fetches what is
 * missing: the metadata of a package new to the tree).
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { basename, delimiter, join, relative, sep } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { CLASS_NAMES } from '../src/data/manifest.ts';
import { loadTestSet } from '../src/data/load.ts';
import { encodePng, grayImage } from './helpers/images.ts';
import { REAL_DATA_DIR } from './helpers/idx-files.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const PACKAGE = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  name: string;
  version: string;
  license: string;
  engines: { node: string };
  bin: Record<string, string>;
  dependencies: Record<string, string>;
  peerDependencies: Record<string, string>;
  peerDependenciesMeta: Record<string, unknown>;
};
/** The checkout's own build and state at its root, which a fresh clone does not have (see .gitignore). */
const NOT_IN_A_CLONE = new Set(['.git', 'node_modules', 'dist', 'build', 'generated', 'runs', 'test-artifacts', '.tmp']);
/** What the README's example trains and searches, and what this test asks instead (seconds, not minutes). */
const SMALL_SETTINGS: [string, string][] = [
  ['{ hidden: 256, epochs: 20, seed: 7 }', '{ hidden: 256, epochs: 1, seed: 7, trainLimit: 2000 }'],
  ['{ trials: 10, maxEpochs: 10 }', '{ trials: 2, maxEpochs: 1, trainLimit: 1000 }'],
];

/** The environment of a user's shell: without what `npm test` tells its scripts about this project. */
const USER_ENV = Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^npm_(lifecycle_|package_|command$|config_local_prefix$)/i.test(name)));

function run(command: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = {}): SpawnSyncReturns<string> {
  const result = spawnSync(command, args, { cwd, env: { ...USER_ENV, ...env }, encoding: 'utf8', timeout: 600_000 });
  assert.equal(result.status, 0, `${command} ${args.join(' ')} in ${cwd} failed (${result.error?.message ?? `exit ${result.status}`}):\n${result.stdout}\n${result.stderr}`);
  return result;
}

/** The ts code block of the README's "Using it as a library". */
function readmeExample(): string {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Using it as a library'));
  const example = /```ts\n([\s\S]*?)```/.exec(section)?.[1];
  assert.ok(example, 'the README has a ts example under "Using it as a library"');
  return example;
}

/** A folder of links to every program on PATH but a C compiler's (cc, gcc, clang and kin). */
function pathWithoutCompiler(dir: string): string {
  const compiler = /^(cc|c\+\+|cpp|gcc|g\+\+|clang|clang\+\+|nvcc)(-[0-9.]+)?$|-(cc|c\+\+|gcc|g\+\+)(-[0-9.]+)?$/;
  mkdirSync(dir);
  for (const folder of (process.env.PATH ?? '').split(delimiter)) {
    if (!existsSync(folder)) continue;
    for (const name of readdirSync(folder)) {
      if (compiler.test(name) || existsSync(join(dir, name))) continue;
      symlinkSync(join(folder, name), join(dir, name));
    }
  }
  return dir;
}

/**
 * A folder holding better-sqlite3's binary as its install script downloads it (prebuild-install;
 * npm_config_better_sqlite3_local_prebuilds points there), made from this checkout's: with it the
 * installs need no network and no compiler for that dependency, as a user's install with
 * internet access gets its prebuilt binary. Elsewhere than Linux x64 the install compiles it.
 */
function betterSqlitePrebuilds(dir: string): NodeJS.ProcessEnv {
  const installed = join(ROOT, 'node_modules', 'better-sqlite3');
  const { version } = JSON.parse(readFileSync(join(installed, 'package.json'), 'utf8')) as { version: string };
  if (process.platform !== 'linux' || process.arch !== 'x64' || !existsSync(join(installed, 'build', 'Release', 'better_sqlite3.node'))) return {};
  mkdirSync(dir);
  const file = join(dir, `better-sqlite3-v${version}-node-v${process.versions.modules}-linux-x64.tar.gz`);
  run('tar', ['czf', file, 'build/Release/better_sqlite3.node'], installed);
  return { npm_config_better_sqlite3_local_prebuilds: dir };
}

/**
 * An empty project that depends on the tarball, with a lockfile of package-lock.json's versions
 * (the package's dependencies and theirs, not the dev tree) and the install-script policy the
 * README recommends (the tarball's entry is its file: address, which npm matches in place of the name).
 */
function consumerProject(dir: string, tarball: string): void {
  mkdirSync(dir);
  const spec = `file:${tarball}`;
  const manifest = {
    name: 'consumer',
    private: true,
    type: 'module',
    dependencies: { [PACKAGE.name]: spec },
    allowScripts: { [spec]: true, 'better-sqlite3': true, 'onnxruntime-node': false, protobufjs: false },
  };
  const ours = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, { dev?: boolean }> };
  const packages: Record<string, unknown> = {
    '': { name: manifest.name, dependencies: manifest.dependencies },
    [`node_modules/${PACKAGE.name}`]: {
      version: PACKAGE.version,
      resolved: spec,
      hasInstallScript: true,
      license: PACKAGE.license,
      dependencies: PACKAGE.dependencies,
      bin: PACKAGE.bin,
      engines: PACKAGE.engines,
      peerDependencies: PACKAGE.peerDependencies,
      peerDependenciesMeta: PACKAGE.peerDependenciesMeta,
    },
  };
  for (const [path, entry] of Object.entries(ours.packages)) if (path !== '' && !entry.dev) packages[path] = entry;
  writeFileSync(join(dir, 'package.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  writeFileSync(join(dir, 'package-lock.json'), `${JSON.stringify({ name: manifest.name, lockfileVersion: 3, requires: true, packages }, null, 2)}\n`);
}

/** The backend a run folder's model trained on, as metrics.json names it (e.g. "native (AVX-512, 2 threads)"). */
function backendOf(runDir: string): string {
  return (JSON.parse(readFileSync(join(runDir, 'metrics.json'), 'utf8')) as { backend: string }).backend;
}

/** Starts the installed `fmnist app` in `cwd` on a free port, fetches its page and stops it. */
async function appPage(cwd: string): Promise<{ status: number; body: string }> {
  const server = spawn(process.execPath, [join('node_modules', '.bin', 'fmnist'), 'app', '--port', '0', '--model', join('runs', 'wide')], { cwd, env: USER_ENV, stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    const url = await new Promise<string>((resolve, reject) => {
      let output = '';
      const timer = setTimeout(() => reject(new Error(`fmnist app did not start in 60 s:\n${output}`)), 60_000);
      const read = (chunk: Buffer) => {
        output += chunk.toString();
        const address = /app: (http\S+)/.exec(output)?.[1];
        if (address) {
          clearTimeout(timer);
          resolve(address);
        }
      };
      server.stdout.on('data', read);
      server.stderr.on('data', read);
      server.on('exit', (code) => reject(new Error(`fmnist app exited (${code}):\n${output}`)));
    });
    const response = await fetch(url);
    return { status: response.status, body: await response.text() };
  } finally {
    server.kill();
  }
}

/** npm's own semver, the one that checks "engines" at install. */
function npmSemver(): { subset: (sub: string, range: string) => boolean } {
  const npmBin = spawnSync('sh', ['-c', 'command -v npm'], { encoding: 'utf8' }).stdout.trim();
  return createRequire(realpathSync(npmBin))('semver') as { subset: (sub: string, range: string) => boolean };
}

describe('the package, packed and installed in another project', { timeout: 900_000 }, () => {
  const temp = mkdtempSync(join(tmpdir(), 'fmnist-package-'));
  const consumer = join(temp, 'consumer');
  let tarball = '';
  let files: string[] = [];

  before(() => {
    const clone = join(temp, 'clone');
    const inAClone = (source: string) => !NOT_IN_A_CLONE.has(relative(ROOT, source).split(sep)[0]) && basename(source) !== '__pycache__' && !source.endsWith('.tsbuildinfo');
    cpSync(ROOT, clone, { recursive: true, filter: inAClone });
    // The dev dependencies that the builds need, as `npm ci` installed them here.
    symlinkSync(join(ROOT, 'node_modules'), join(clone, 'node_modules'));
    run('npm', ['pack', '--pack-destination', temp], clone);
    tarball = join(temp, readdirSync(temp).find((name) => name.endsWith('.tgz'))!);
    files = run('tar', ['tzf', tarball], temp)
      .stdout.split('\n')
      .filter((line) => line && !line.endsWith('/'))
      .map((line) => line.replace(/^package\//, ''));
  });

  after(() => rmSync(temp, { recursive: true, force: true }));

  test('npm pack publishes the build, the addon\'s sources, the web app and the docs, and nothing else', () => {
    for (const file of [
      'package.json', 'README.md', 'dist/index.js', 'dist/index.d.ts', 'dist/cli/main.js', 'dist/search/trainer-process.js',
      'dist/wasm/kernels.wasm', 'dist/wasm/kernels-relaxed.wasm', 'dist/web/index.html',
      'proto/grpc_predict_v2.proto', 'dist/serve/classifier-worker.js', 'binding.gyp', 'native/addon.c', 'native/napi_args.h', 'generated/kernels.h', 'generated/bindings.c', 'scripts/build-native.mjs',
      'docs/cli.md', 'docs/api/README.md', 'docs/load_in_pytorch.py',
    ]) {
      assert.ok(files.includes(file), `${file} is in the package`);
    }
    // Every doc the README links to.
    for (const [, link] of readFileSync(join(ROOT, 'README.md'), 'utf8').matchAll(/\]\((docs\/[^)#]+)/g)) assert.ok(files.includes(link), `${link} is in the package`);
    // Only what a user needs: no binary of this machine, no sources that dist/ compiles, no tests, runs or source maps.
    const extra = files.filter((file) => /^(build|src|test|bench|web|runs|spaces|test-artifacts)\//.test(file) || /^scripts\/(?!build-native\.mjs$)/.test(file) || file.endsWith('.map') || file === 'generated/wasm-exports.ts');
    assert.deepEqual(extra, []);
    const gyp = JSON.parse(readFileSync(join(ROOT, 'binding.gyp'), 'utf8')) as { targets: { sources: string[] }[] };
    for (const source of gyp.targets[0].sources) assert.ok(files.includes(source), `${source}, which binding.gyp compiles, is in the package`);
  });

  test('a fresh resolution of its dependencies accepts every Node version that "engines" promises', () => {
    const fresh = join(temp, 'fresh');
    mkdirSync(fresh);
    writeFileSync(join(fresh, 'package.json'), JSON.stringify({ name: 'fresh', private: true, dependencies: { [PACKAGE.name]: `file:${tarball}` } }));
    run('npm', ['install', '--package-lock-only', '--prefer-offline', '--ignore-scripts'], fresh);
    const lock = JSON.parse(readFileSync(join(fresh, 'package-lock.json'), 'utf8')) as { packages: Record<string, { version?: string; engines?: { node?: string } }> };
    const semver = npmSemver();
    const narrower = Object.entries(lock.packages)
      .filter(([path, entry]) => path !== '' && entry.engines?.node && !semver.subset(PACKAGE.engines.node, entry.engines.node))
      .map(([path, entry]) => `${path.replace(/^.*node_modules\//, '')}@${entry.version} wants node ${entry.engines!.node}`);
    assert.deepEqual(narrower, [], `engines.node is ${PACKAGE.engines.node}: pin what needs a newer Node (package.json), or narrow engines`);
  });

  test('installed offline: the README example type-checks (strict, nodenext) and trains on the native backend built at install; npx fmnist --help, predict and app answer', async () => {
    consumerProject(consumer, tarball);
    const install = run('npm', ['ci', '--offline', '--foreground-scripts'], consumer, betterSqlitePrebuilds(join(temp, 'prebuilds')));
    // Where this machine has no compiler, the install's fallback is what this test sees (and the next one too).
    const native = spawnSync('cc', ['--version'], { stdio: 'ignore' }).status === 0;
    assert.match(install.stdout, native ? /fmnist: built the native backend/ : /fmnist: the native backend is not built/);
    assert.equal(existsSync(join(consumer, 'node_modules', PACKAGE.name, 'build', 'Release', 'fmnist_native.node')), native, 'the addon is built at install where there is a compiler');
    assert.ok(!existsSync(join(consumer, 'node_modules', 'webgpu')), 'webgpu, an optional peer dependency, is not installed');

    // The example as the README has it, and with small settings, under a user's strict settings.
    mkdirSync(join(consumer, 'src'));
    const example = readmeExample();
    let small = example;
    for (const [from, to] of SMALL_SETTINGS) {
      assert.ok(small.includes(from), `the README's example no longer has ${from}: update SMALL_SETTINGS`);
      small = small.replace(from, to);
    }
    writeFileSync(join(consumer, 'src', 'readme.ts'), example);
    writeFileSync(join(consumer, 'src', 'small.ts'), small);
    const compilerOptions = { strict: true, module: 'nodenext', moduleResolution: 'nodenext', target: 'es2022', skipLibCheck: false, rootDir: 'src', outDir: 'out' };
    writeFileSync(join(consumer, 'tsconfig.json'), JSON.stringify({ compilerOptions, include: ['src'] }));
    run(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', '.'], consumer);

    const ran = run(process.execPath, ['out/small.js'], consumer);
    // Test accuracy and macro F1, the report's path, the best trial, its validation and test accuracy.
    assert.match(ran.stdout, /^0\.\d+ 0\.\d+\n.*runs\/wide\/report\.html\n[\s\S]*\} 0\.\d+\n0\.\d+\n$/);
    for (const file of ['wide/report.html', 'search-small/best.json']) assert.ok(existsSync(join(consumer, 'runs', file)), `${file} is written`);
    assert.match(backendOf(join(consumer, 'runs', 'wide')), native ? /^native / : /^wasm /);

    const help = run('npx', ['--offline', 'fmnist', '--help'], consumer);
    assert.match(help.stdout, /^Usage: fmnist/);
    const { pixels } = loadTestSet(REAL_DATA_DIR).data;
    writeFileSync(join(consumer, 'test-image.png'), encodePng(grayImage(pixels.subarray(0, 28 * 28))));
    const predict = run('npx', ['--offline', 'fmnist', 'predict', '--model', 'runs/wide', '--json', 'test-image.png'], consumer);
    const answer = JSON.parse(predict.stdout) as { images: { models: { top: { class: string; probability: number }[] }[] }[] };
    assert.ok((CLASS_NAMES as readonly string[]).includes(answer.images[0].models[0].top[0].class), predict.stdout);
    // The web app's built page, which the package carries.
    const page = await appPage(consumer);
    assert.equal(page.status, 200);
    assert.match(page.body, /<script type="module"/);
  });

  test('installed again with no C compiler on PATH: the install succeeds with its one line, and the example trains on WebAssembly', () => {
    const path = pathWithoutCompiler(join(temp, 'bin'));
    // The package alone is installed again (the rest of the tree is there), its addon not built.
    rmSync(join(consumer, 'node_modules', PACKAGE.name), { recursive: true });
    rmSync(join(consumer, 'runs'), { recursive: true });
    const install = run('npm', ['install', '--offline', '--foreground-scripts'], consumer, { PATH: path });
    assert.match(install.stdout, /fmnist: the native backend is not built \(there is no C compiler \(cc\): install build-essential\); the WebAssembly backend will be used\./);
    assert.ok(!existsSync(join(consumer, 'node_modules', PACKAGE.name, 'build')), 'no addon');

    const example = run(process.execPath, ['out/small.js'], consumer, { PATH: path });
    assert.match(example.stdout, /^0\.\d+ 0\.\d+\n/);
    assert.match(backendOf(join(consumer, 'runs', 'wide')), /^wasm /);
    assert.ok(existsSync(join(consumer, 'runs', 'wide', 'report.html')), 'the report is written');
  });
});
