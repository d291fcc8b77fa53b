/**
 * The training job (see job-core.ts, re-exported here, which reads no files so the web app's
 * worker runs it too), with the one part that reads a run's files: the data of the MLP on a
 * pipeline's saved CNN features.
 */
import type { SplitIndices } from '../data/split.ts';
import type { LoadedData } from '../data/prepare.ts';
import type { RunStreams } from '../random/streams.ts';
import { imageJobData, type JobData, type JobSpec } from './job-core.ts';
import { FeaturesFolder } from './run-folder.ts';

export * from './job-core.ts';

/**
 * The job's data. Images: the training file split (and, for a quick run, sampled) from the
 * job's streams, or the split given (a pipeline extracting the features of the images its CNN
 * trained on). Features: the pipeline's saved ones.
 */
export function jobData(
  spec: JobSpec,
  streams: RunStreams,
  source: { loaded?: LoadedData; indices?: SplitIndices; allowModifiedData?: boolean },
): JobData {
  if (spec.kind === 'cnn-features-mlp') {
    const folder = new FeaturesFolder(spec.features.dir);
    const { flipAverage } = folder.description();
    return { type: 'features', train: folder.read('train'), validation: folder.read('val'), test: () => folder.read('test'), flipAverage };
  }
  if (!source.loaded) throw new Error(`a ${spec.kind} job needs the training images loaded`);
  return imageJobData(spec.config, streams, { ...source, loaded: source.loaded });
}
