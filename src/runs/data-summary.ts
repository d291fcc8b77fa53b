import { NUM_CLASSES } from '../data/idx.ts';
import { loadTestSet, loadTrainingSet, type FileCheck } from '../data/load.ts';
import { locateData, type DataLocation, type LocateOptions } from '../data/locate.ts';
import { stratifiedSplit } from '../data/split.ts';
import { Rng } from '../random/rng.ts';
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

/** Where the data is, whether each file is the official one, and the per-class counts of the default split. */
export async function summarizeData(options: { data?: LocateOptions; allowModifiedData?: boolean; seed?: number } = {}): Promise<DataSummary> {
  const location = await locateData(options.data);
  const loadOptions = { allowModified: options.allowModifiedData };
  const training = loadTrainingSet(location.dir, loadOptions);
  const test = loadTestSet(location.dir, loadOptions);
  // The same fork order as a training run, so these are the counts that run would use.
  const splitRng = Rng.fromSeed(options.seed ?? DEFAULT_MLP_CONFIG.seed).fork();
  const split = stratifiedSplit(training.data, DEFAULT_MLP_CONFIG.validationFraction, splitRng);
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
