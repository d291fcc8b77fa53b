/**
 * The models that stay: every model trained in the page (and every folder dropped onto it) is
 * kept in the browser's IndexedDB as its run's files, by the run folder's names, and listed
 * again after a reload. Four requests on one object store need no library: each IndexedDB
 * request is wrapped in a promise here.
 */
import type { RunFileMap } from './protocol.ts';

const DATABASE = 'fmnist';
const STORE = 'models';
const VERSION = 1;

/** A kept model: its run's files (and its extractor's, for an MLP on CNN features), with what the page calls it. */
export interface KeptModel {
  /** `kept:<when it was kept, ms since 1970>-<n>`. */
  id: string;
  label: string;
  /** When it was kept (ms since 1970); the list is in this order. */
  kept: number;
  files: RunFileMap;
  extractor: RunFileMap | null;
}

/** A request's result, or its error. */
function done<T>(request: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error ?? new Error('the browser\'s storage refused the request'));
  });
}

/** A transaction's end: its writes are stored once it completes. */
function completed(transaction: IDBTransaction): Promise<void> {
  return new Promise((resolve, reject) => {
    transaction.oncomplete = () => resolve();
    transaction.onerror = () => reject(transaction.error ?? new Error('the browser\'s storage refused the write'));
    transaction.onabort = () => reject(transaction.error ?? new Error('the browser\'s storage aborted the write (is it full?)'));
  });
}

export class ModelStore {
  private constructor(private readonly database: IDBDatabase) {}

  /** The page's store, or null where the browser gives no IndexedDB (a private window may refuse it). */
  static async open(): Promise<ModelStore | null> {
    if (typeof indexedDB === 'undefined') return null;
    try {
      const request = indexedDB.open(DATABASE, VERSION);
      request.onupgradeneeded = () => {
        if (!request.result.objectStoreNames.contains(STORE)) request.result.createObjectStore(STORE, { keyPath: 'id' });
      };
      return new ModelStore(await done(request));
    } catch {
      return null;
    }
  }

  /** Every kept model, oldest first. */
  async all(): Promise<KeptModel[]> {
    const models = await done(this.database.transaction(STORE, 'readonly').objectStore(STORE).getAll() as IDBRequest<KeptModel[]>);
    return models.sort((a, b) => a.kept - b.kept);
  }

  async put(model: KeptModel): Promise<void> {
    const transaction = this.database.transaction(STORE, 'readwrite');
    transaction.objectStore(STORE).put(model);
    await completed(transaction);
  }

  async delete(id: string): Promise<void> {
    const transaction = this.database.transaction(STORE, 'readwrite');
    transaction.objectStore(STORE).delete(id);
    await completed(transaction);
  }
}
