/**
 * The page's models, wherever they come from: the server's run folder (`fmnist app --model`),
 * the runs trained in the page and the folders dropped onto it, the last two kept in the
 * browser (store.ts) and loaded again at the next visit. Each is rebuilt from its run's files
 * (engine.ts) and joins Try, Inside and Models, and its run's figures join Look.
 */
import type { ServedModel } from '../src/app/api.ts';
import { pageModel, runFromFiles, servedFiles, type ModelSource, type PageModel } from './engine.ts';
import { modelFolders, type DroppedFiles } from './model-files.ts';
import type { RunFileMap } from './protocol.ts';
import type { AppState } from './state.ts';
import type { KeptModel, ModelStore } from './store.ts';

export type { DroppedFiles } from './model-files.ts';

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
