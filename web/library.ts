/**
 * The page's models, wherever they come from: the server's run folder (`fmnist app --model`),
 * the runs trained in the page and the folders dropped onto it, the last two kept in the
 * browser (store.ts) and loaded again at the next visit. Each is rebuilt from its run's files
 * (engine.ts) and joins Try, Inside and Models, and its run's figures join Look.
 */
import type { ServedModel } from '../src/app/api.ts';
import type { ModelDescription } from '../src/models/model-format.ts';
import { RUN_FILES } from '../src/runs/run-files.ts';
import { modelFilesOf, pageModel, runFromFiles, servedFiles, type ModelSource, type PageModel } from './engine.ts';
import type { RunFileMap } from './protocol.ts';
import type { AppState } from './state.ts';
import type { KeptModel, ModelStore } from './store.ts';

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

export class ModelLibrary {
  /** Models trained in the page so far, kept ones included: the next is `page <kind> <n + 1>`. */
  private trained = 0;
  private keptNow = 0;

  constructor(
    private readonly state: AppState,
    private readonly store: ModelStore | null,
  ) {}

  /** Whether the browser keeps models (IndexedDB may be refused, in a private window for one). */
  get keeps(): boolean {
    return this.store !== null;
  }

  /** The number the next model trained in the page is given. */
  nextRunNumber(): number {
    return ++this.trained;
  }

  private async add(meta: { id: string; label: string; source: ModelSource; where: string }, files: RunFileMap, extractor: RunFileMap | null): Promise<PageModel> {
    const model = await pageModel(meta, files, extractor, this.state.engine);
    this.state.addModel(model);
    const run = runFromFiles(meta.id, meta.label, files);
    if (run !== null) this.state.addRun(run);
    return model;
  }

  /** The models kept in this browser, loaded again (a model that fails is reported and left kept). */
  async loadKept(report: (message: string) => void): Promise<void> {
    if (this.store === null) return;
    for (const kept of await this.store.all()) {
      const number = /^page \S+ (\d+)/.exec(kept.label);
      if (number) this.trained = Math.max(this.trained, Number(number[1]));
      try {
        await this.add({ id: kept.id, label: kept.label, source: 'kept', where: `${kept.label}/` }, kept.files, kept.extractor);
      } catch (error) {
        report(`The kept model ${kept.label} could not be loaded: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
  }

  /** A model made in the page or dropped onto it: kept in the browser (where it keeps models) and added. */
  async keep(label: string, files: RunFileMap, extractor: RunFileMap | null = null): Promise<PageModel> {
    const now = Date.now();
    // Unique in this browser: the time, and a counter for models kept within the same millisecond.
    const kept: KeptModel = { id: `kept:${now}-${++this.keptNow}`, label, kept: now, files, extractor };
    const model = await this.add({ id: kept.id, label, source: 'kept', where: `${label}/` }, files, extractor);
    await this.store?.put(kept);
    return model;
  }

  /** A model for this visit only (a stopped run's best epoch so far). */
  addUnkept(id: string, label: string, files: RunFileMap): Promise<PageModel> {
    return this.add({ id, label, source: 'page', where: `${label}/` }, files, null);
  }

  /** A model of the server's run folder, with its run's figures where the folder has them. */
  async addServed(served: ServedModel, page: URL): Promise<PageModel> {
    const { files, extractor } = await servedFiles(served, page);
    return this.add({ id: `server:${served.name}`, label: served.name, source: 'server', where: served.path }, files, extractor);
  }

  /** Dropped files: each model folder among them kept and added (named by its path, or `name` for loose files); returns the added models and the problems found. */
  async addDropped(dropped: DroppedFiles, name: string): Promise<{ added: PageModel[]; problems: string[] }> {
    const { folders, problems } = modelFolders(dropped);
    const added: PageModel[] = [];
    for (const folder of folders) {
      const label = folder.path === '' ? name : folder.path;
      try {
        added.push(await this.keep(label, folder.files, folder.extractor));
      } catch (error) {
        problems.push(error instanceof Error ? error.message : String(error));
      }
    }
    return { added, problems };
  }

  /** Forgets a kept model: out of the browser's store and the page. */
  async forget(id: string): Promise<void> {
    await this.store?.delete(id);
    await this.state.removeModel(id);
  }
}
