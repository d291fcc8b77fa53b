import { NUM_CLASSES } from '../data/idx.ts';
import { loadTestSet, type FileCheck } from '../data/load.ts';
import type { DataLocation, LocateOptions } from '../data/locate.ts';
import { loadData, prepareData } from '../data/prepare.ts';
import { forkStreams } from '../random/streams.ts';
import { DEFAULT_MLP_CONFIG } from './configs.ts';

export interface DataSummary {
  location: DataLocation;
  checks: FileCheck[];
  /** Examples per class in each part, class order 0..9. */
  counts: { train: number[]; validation: number[]; test: number[] };
}

function countPerClass(labels: Uint8Array): number[] {
  const counts = new Array<number>(NUM_CLASSES).fill(0);
  for (const label of labels) counts[label]++;
  return counts;
}

/**
 * Where the data is, whether each file is the official one, and the per-class counts of the
 * split that a training run with this seed (and the default validation fraction) uses.
 */
export async function summarizeData(options: { data?: LocateOptions; allowModifiedData?: boolean; seed?: number } = {}): Promise<DataSummary> {
  const loaded = await loadData(options);
  const test = loadTestSet(loaded.location.dir, { allowModified: options.allowModifiedData });
  const config = { ...DEFAULT_MLP_CONFIG, seed: options.seed ?? DEFAULT_MLP_CONFIG.seed };
  const split = prepareData(loaded, config, forkStreams(config.seed));
  return {
    location: loaded.location,
    checks: [...loaded.training.checks, ...test.checks],
    counts: {
      train: countPerClass(split.train.labels),
      validation: countPerClass(split.validation.labels),
      test: countPerClass(test.data.labels),
    },
  };
}
