/**
 * A model's files as the page holds them (by the run folder's names, src/runs/run-files.ts):
 * the model read from them, and the model folders among dropped files. No browser API here,
 * so Node's tests run it as it is.
 */
import { parseModelDescription, type ModelDescription } from '../src/models/model-format.ts';
import { RUN_FILES } from '../src/runs/run-files.ts';
import type { ModelFiles, RunFileMap } from './protocol.ts';

const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

/** model.json's description and model.safetensors' bytes of a run's files; `where` names the folder in messages. */
export function modelFilesOf(files: RunFileMap, where: string): ModelFiles {
  const json = files.get(RUN_FILES.model);
  const weights = files.get(RUN_FILES.weights);
  if (json === undefined || weights === undefined) throw new Error(`${where} lacks ${json === undefined ? RUN_FILES.model : RUN_FILES.weights}; a model folder holds both.`);
  return { description: parseModelDescription(text(json), `${where}${RUN_FILES.model}`), weights };
}

/** A folder of files as a drop or a file picker gives them: each file's path relative to what was dropped (`cnn/model.json`), and its bytes. */
export type DroppedFiles = Map<string, Uint8Array>;

/** A folder's path joined with a relative one (`a/b` and `../c` give `a/c`), as a model.json's extractor path is resolved. */
export function joinPath(folder: string, relative: string): string {
  const parts = folder === '' ? [] : folder.split('/');
  for (const part of relative.split('/')) {
    if (part === '..') parts.pop();
    else if (part !== '.' && part !== '') parts.push(part);
  }
  return parts.join('/');
}

/**
 * The model folders among dropped files: each folder holding model.json, with its run's files
 * (those of the run folder's list it has) and, for an MLP on CNN features, the CNN it names
 * when that was dropped too. A model without its weights, or without the CNN it needs, is a
 * problem to report, in one sentence.
 */
export function modelFolders(dropped: DroppedFiles): { folders: { path: string; files: RunFileMap; extractor: RunFileMap | null }[]; problems: string[] } {
  const byFolder = new Map<string, RunFileMap>();
  for (const [path, bytes] of dropped) {
    const slash = path.lastIndexOf('/');
    const folder = slash < 0 ? '' : path.slice(0, slash);
    const name = path.slice(slash + 1);
    if (!Object.values(RUN_FILES).includes(name as never)) continue;
    const files = byFolder.get(folder) ?? new Map<string, Uint8Array>();
    files.set(name, bytes);
    byFolder.set(folder, files);
  }
  const folders = [];
  const problems: string[] = [];
  const where = (folder: string) => (folder === '' ? 'The dropped files have' : `${folder}/ has`);
  for (const [folder, files] of [...byFolder].sort(([a], [b]) => a.localeCompare(b))) {
    if (!files.has(RUN_FILES.model)) continue;
    if (!files.has(RUN_FILES.weights)) {
      problems.push(`${where(folder)} ${RUN_FILES.model} but no ${RUN_FILES.weights}; drop both files of the model's folder.`);
      continue;
    }
    let description: ModelDescription;
    try {
      description = modelFilesOf(files, folder === '' ? '' : `${folder}/`).description;
    } catch (error) {
      problems.push(error instanceof Error ? error.message : String(error));
      continue;
    }
    let extractor: RunFileMap | null = null;
    if (description.input.type === 'cnn-features') {
      const path = joinPath(folder, description.input.extractor);
      extractor = byFolder.get(path) ?? null;
      if (extractor === null || !extractor.has(RUN_FILES.model)) {
        problems.push(`${folder === '' ? 'The dropped model' : `${folder}/`} is an MLP on the features of the CNN in ${description.input.extractor}; drop the folder that holds both (a pipeline's folder).`);
        continue;
      }
    }
    folders.push({ path: folder, files, extractor });
  }
  if (folders.length === 0 && problems.length === 0) problems.push(`No ${RUN_FILES.model} among the dropped files; drop a model folder (${RUN_FILES.model} and ${RUN_FILES.weights}, as fmnist train writes them).`);
  return { folders, problems };
}

