import { Rng } from './rng.ts';

/**
 * The random streams of one training job, each forked from the job's seed: the data split, the
 * sample of a quick run, the initialisation, the shuffles, dropout's keys and augmentation.
 * A job forks them once and hands each to the part that draws from it, so the same seed gives
 * the same split, weights, order, masks and shifts, whichever other streams are used.
 */
export interface RunStreams {
  split: Rng;
  init: Rng;
  shuffle: Rng;
  dropout: Rng;
  sample: Rng;
  augment: Rng;
}

/** The job's streams; the order of the forks is fixed here and nowhere else. */
export function forkStreams(seed: number): RunStreams {
  const root = Rng.fromSeed(seed);
  return { split: root.fork(), init: root.fork(), shuffle: root.fork(), dropout: root.fork(), sample: root.fork(), augment: root.fork() };
}
