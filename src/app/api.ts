/**
 * What `fmnist app`'s server tells the page (GET api/info), shared by the server and the page.
 * Paths are relative to the page's address, so the app works under any prefix.
 */
import type { DataFileKey } from '../data/manifest.ts';

/** The headers of a cross-origin isolated page (and of what it loads from the same server). */
export const ISOLATION_HEADERS = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
  'Cross-Origin-Resource-Policy': 'same-origin',
} as const;

/** One data file the server offers: its name on disk (`.gz` or not) and where to fetch it. */
export interface ServedDataFile {
  name: string;
  path: string;
}

/** One model of the run folder given with --model. */
export interface ServedModel {
  /** The model kind in a pipeline (mlp, cnn, cnn-features-mlp), else the folder's name. */
  name: string;
  kind: string;
  /** Folder of its files: model.json, model.safetensors and, where the run wrote them, history.json, metrics.json, config.json, test_probabilities.npy. */
  path: string;
  /** The files of that folder that exist. */
  files: string[];
  /** For the MLP on CNN features: the folder of the CNN that computes its input (model.json, model.safetensors). */
  extractorPath?: string;
}

export interface AppInfo {
  app: 'fmnist';
  version: string;
  /** The four files, or null where the server found none (the page then asks for them). */
  data: Record<DataFileKey, ServedDataFile> | null;
  /** Why there is no data, in one sentence, where there is none. */
  dataProblem?: string;
  /** The server was started with --allow-modified-data: the page loads files that differ from the official release. */
  allowModifiedData: boolean;
  models: ServedModel[];
}
