/**
 * `npm run notebook`: opens notebooks/fashion-mnist.ipynb in Jupyter Notebook with its
 * TypeScript kernel (tslab) registered for this Node, installing the kernel first where it is
 * missing (`npm ci --prefix notebooks`).
 *
 *   npm run notebook                          Jupyter Notebook on the notebook (other flags go to it)
 *   npm run notebook -- --register            only register the kernel (for VS Code)
 *   npm run notebook -- --execute [--full]    run it headless into runs/notebook-<mode>/ (.ipynb and .html)
 *
 * Jupyter is Debian's (apt-get install -y jupyter-notebook jupyter-nbconvert python3-ipykernel):
 * /usr/bin/jupyter, whose Python is /usr/bin/python3 whatever python3 comes first on PATH, or
 * else a `jupyter` on PATH. The test suite runs the notebook through executeNotebook.
 */
import { spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { makeFolder, writeFileAtomic } from '../src/io/atomic.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const NOTEBOOK = join(ROOT, 'notebooks', 'fashion-mnist.ipynb');
/** The kernel's name in Jupyter's registry; the notebook's metadata names it. */
export const KERNEL_NAME = 'fashion-mnist-ts';
const TSLAB = join(ROOT, 'notebooks', 'node_modules', 'tslab', 'bin', 'tslab');
const INSTALL_HINT = 'apt-get install -y jupyter-notebook jupyter-nbconvert python3-ipykernel';

/** Debian's `jupyter` (/usr/bin), else the first on PATH; null where there is none. */
export function findJupyter(): string | null {
  const candidates = ['/usr/bin/jupyter', ...(process.env.PATH ?? '').split(delimiter).filter(Boolean).map((dir) => join(dir, 'jupyter'))];
  for (const candidate of candidates) {
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here; try the next
    }
  }
  return null;
}

/** Whether `jupyter <subcommand>` is installed next to `jupyter` (Debian ships each as jupyter-<subcommand>). */
export function hasJupyterCommand(jupyter: string, subcommand: 'notebook' | 'nbconvert'): boolean {
  return existsSync(`${jupyter}-${subcommand}`) || spawnSync(jupyter, [subcommand, '--version'], { stdio: 'ignore' }).status === 0;
}

/** Whether notebooks/node_modules holds the kernel. */
export function kernelInstalled(): boolean {
  return existsSync(TSLAB);
}

/** Whether the library is built: the notebook's cells import ../dist/index.js (npm ci builds it, as npm run build does). */
export function libraryBuilt(): boolean {
  return existsSync(join(ROOT, 'dist', 'index.js'));
}

/** Installs the kernel from notebooks/package-lock.json where it is missing. */
function installKernel(): void {
  if (kernelInstalled()) return;
  console.log('installing the notebook kernel (tslab) into notebooks/node_modules: npm ci --prefix notebooks');
  const npm = spawnSync('npm', ['ci', '--prefix', join(ROOT, 'notebooks')], { stdio: 'inherit' });
  if (npm.status !== 0) fail('npm ci --prefix notebooks failed (see above); the notebook kernel is not installed.');
}

/**
 * Writes the kernel's spec, kernel.json, into `kernelsDir`/fashion-mnist-ts: tslab started by
 * the Node that runs this script, so that the kernel runs on the project's Node whatever `node`
 * is first on the PATH Jupyter gets.
 */
export function writeKernelSpec(kernelsDir: string): string {
  const dir = join(kernelsDir, KERNEL_NAME);
  makeFolder(dir);
  const spec = {
    argv: [process.execPath, TSLAB, 'kernel', '--config-path', '{connection_file}'],
    display_name: 'TypeScript (fashion-mnist-ts)',
    language: 'typescript',
    metadata: { node: process.version },
  };
  const path = join(dir, 'kernel.json');
  writeFileAtomic(path, `${JSON.stringify(spec, null, 2)}\n`);
  return path;
}

/** Registers the kernel in the user's Jupyter data folder (`jupyter --data-dir`), where Jupyter and VS Code look. */
function registerKernel(jupyter: string): string {
  const dataDir = spawnSync(jupyter, ['--data-dir'], { encoding: 'utf8' });
  if (dataDir.status !== 0) fail(`${jupyter} --data-dir failed: ${dataDir.stderr.trim()}`);
  return writeKernelSpec(join(dataDir.stdout.trim(), 'kernels'));
}

export interface ExecuteOptions {
  /** The notebook to run; default notebooks/fashion-mnist.ipynb. Its cells import the library from ../dist, beside the notebook's folder. */
  notebook?: string;
  /** Folder of the executed notebook (fashion-mnist.ipynb) and its HTML. */
  outDir: string;
  /** Environment of the kernel: FMNIST_NOTEBOOK_MODE, FMNIST_NOTEBOOK_OUT. */
  env?: Record<string, string>;
  /** Also render the executed notebook as fashion-mnist.html. */
  html?: boolean;
  /** Seconds any one cell may run; default: no limit (a full run's CNN takes minutes, more on a slow or busy machine). */
  cellTimeout?: number;
  /** Seconds the whole run may take before it is stopped; default: no limit. */
  timeoutSeconds?: number;
}

/**
 * Runs the notebook headless (`jupyter nbconvert --execute`) with the kernel registered in a
 * temporary folder of its own (JUPYTER_PATH), not the user's. Returns the executed notebook's
 * path, or the error nbconvert reports (a cell that throws ends the run).
 */
export function executeNotebook(jupyter: string, options: ExecuteOptions): { path: string; html: string | null; error: string | null } {
  const registry = mkdtempSync(join(tmpdir(), 'fmnist-jupyter-'));
  try {
    writeKernelSpec(join(registry, 'kernels'));
    const env = { ...process.env, ...options.env, JUPYTER_PATH: registry, PYDEVD_DISABLE_FILE_VALIDATION: '1' };
    const outDir = resolve(options.outDir);
    const args = [
      'nbconvert',
      '--to',
      'notebook',
      '--execute',
      `--ExecutePreprocessor.kernel_name=${KERNEL_NAME}`,
      `--ExecutePreprocessor.timeout=${options.cellTimeout ?? -1}`,
      '--output-dir',
      outDir,
      '--output',
      'fashion-mnist',
      options.notebook ?? NOTEBOOK,
    ];
    const timeout = options.timeoutSeconds === undefined ? undefined : options.timeoutSeconds * 1000;
    const run = spawnSync(jupyter, args, { env, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, timeout });
    const path = join(outDir, 'fashion-mnist.ipynb');
    if (run.error) return { path, html: null, error: `nbconvert did not finish: ${run.error.message}` };
    if (run.status !== 0) return { path, html: null, error: run.stderr.split('\n').slice(-40).join('\n') };
    if (!options.html) return { path, html: null, error: null };
    const html = spawnSync(jupyter, ['nbconvert', '--to', 'html', path], { env, encoding: 'utf8' });
    if (html.status !== 0) return { path, html: null, error: html.stderr };
    return { path, html: path.replace(/\.ipynb$/, '.html'), error: null };
  } finally {
    rmSync(registry, { recursive: true, force: true });
  }
}

function fail(message: string): never {
  console.error(message);
  process.exit(1);
}

function main(args: string[]): void {
  const jupyter = findJupyter();
  if (!jupyter || !hasJupyterCommand(jupyter, 'notebook')) fail(`Jupyter Notebook is not installed; on Debian: ${INSTALL_HINT}.`);
  if (!libraryBuilt()) fail('The notebook runs the built library, dist/, which is missing: npm run build (npm ci builds it too).');
  installKernel();
  if (args.includes('--execute')) {
    if (!hasJupyterCommand(jupyter, 'nbconvert')) fail(`nbconvert is not installed; on Debian: ${INSTALL_HINT}.`);
    const mode = args.includes('--full') ? 'full' : 'quick';
    const outDir = join(ROOT, 'runs', `notebook-${mode}`);
    console.log(`running ${NOTEBOOK} in ${mode} mode into ${outDir}`);
    const started = performance.now();
    const result = executeNotebook(jupyter, { outDir, env: { FMNIST_NOTEBOOK_MODE: mode, FMNIST_NOTEBOOK_OUT: outDir }, html: true });
    if (result.error) fail(`the notebook stopped with an error:\n${result.error}`);
    console.log(`done in ${((performance.now() - started) / 1000).toFixed(0)} s: ${result.path}, ${result.html}`);
    return;
  }
  const spec = registerKernel(jupyter);
  console.log(`kernel "TypeScript (fashion-mnist-ts)" registered for Node ${process.version}: ${spec}`);
  if (args.includes('--register')) return;
  // Jupyter refuses to run as root unless told.
  const rootFlag = process.getuid?.() === 0 ? ['--allow-root'] : [];
  const notebook = spawnSync(jupyter, ['notebook', ...rootFlag, ...args, NOTEBOOK], { stdio: 'inherit' });
  process.exit(notebook.status ?? 1);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) main(process.argv.slice(2));
