import { NUM_CLASSES } from '../data/idx.ts';
import { loadTestSet, loadTrainingSet, type FileCheck } from '../data/load.ts';
import { locateData, type DataLocation, type LocateOptions } from '../data/locate.ts';
import { stratifiedSplit } from '../data/split.ts';
import { DEFAULT_MLP_CONFIG } from './configs.ts';
import { forkStreams } from './data-prep.ts';

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

/** Where the data is, whether each file is the official one, and the per-class counts of the default split. */
export async function summarizeData(options: { data?: LocateOptions; allowModifiedData?: boolean; seed?: number } = {}): Promise<DataSummary> {
  const location = await locateData(options.data);
  const loadOptions = { allowModified: options.allowModifiedData };
  const training = loadTrainingSet(location.dir, loadOptions);
  const test = loadTestSet(location.dir, loadOptions);
  // The split stream of a training run with this seed, so these are the counts that run uses.
  const split = stratifiedSplit(training.data, DEFAULT_MLP_CONFIG.validationFraction, forkStreams(options.seed ?? DEFAULT_MLP_CONFIG.seed).split);
  return {
    location,
    checks: [...training.checks, ...test.checks],
    counts: {
      train: countPerClass(split.train.labels),
      validation: countPerClass(split.validation.labels),
      test: countPerClass(test.data.labels),
    },
  };
}
