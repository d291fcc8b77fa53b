/** Worker threads running one of this package's modules, from the build or from source. */
import { extname } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';

/**
 * A worker thread running the module `name` (beside this file: name.js once built, name.ts from
 * source under tsx). From source, tsx's loader is registered in the worker first: on Node 20 a
 * worker thread does not get its process's --import hooks.
 */
export function moduleWorker(name: string, workerData?: unknown): Worker {
  const file = fileURLToPath(new URL(`./${name}${extname(fileURLToPath(import.meta.url))}`, import.meta.url));
  const target = JSON.stringify(pathToFileURL(file).href);
  const source = file.endsWith('.ts')
    ? `import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))}).then(({ register }) => { register(); return import(${target}); });`
    : `import(${target});`;
  return new Worker(source, { eval: true, workerData });
}
