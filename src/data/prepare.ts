import { loadTestSet, loadTrainingSet } from './load.ts';
import { locateData, type LocateOptions } from './locate.ts';
import type { LoadedData } from './split.ts';

export { prepareData, type LoadedData, type PreparedData, type SplitSettings } from './split.ts';

/** Where to find the data; a caller that has loaded it already passes it on. */
export interface DataOptions {
  data?: LocateOptions;
  /** Load data files that differ from the official release instead of refusing them. */
  allowModifiedData?: boolean;
  /** The data, located and the training set loaded, to reuse. */
  loaded?: LoadedData;
}

/** Locates the data and loads the training file, unless `options.loaded` has it already. */
export async function loadData(options: DataOptions & { log?: (message: string) => void }): Promise<LoadedData> {
  if (options.loaded) return options.loaded;
  const location = await locateData(options.data);
  options.log?.(`data: ${location.dir} (${location.origin})`);
  return {
    location,
    training: loadTrainingSet(location.dir, { allowModified: options.allowModifiedData }),
    loadTest: (loadOptions) => loadTestSet(location.dir, loadOptions),
  };
}
