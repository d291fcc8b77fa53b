/**
 * Successive halving as pure functions: the rungs, how many trials each keeps, and which trials
 * go on. The study (study.ts) reads a rung's results from its database and asks these
 * functions what to promote; nothing here touches storage or time.
 */

/**
 * `sync`: a rung's best trials go on once every trial of the rung has its result, so the outcome
 * does not depend on which worker finished first. `async` (ASHA, Li et al. 2018): a trial goes on
 * as soon as it ranks in the top 1/eta of the results its rung has so far, so no worker waits for
 * the rung's slowest job, up to synchronous halving's size of the next rung (its budget, as
 * Hyperband's brackets have): promotions made early stand when later results outrank them, and
 * past the budget they would add jobs that cost a few workers more than the waiting saves.
 */
export type Halving = 'sync' | 'async';
export const HALVINGS: readonly Halving[] = ['sync', 'async'];

/**
 * Epochs at each rung: the last is maxEpochs, each earlier one a reductionFactor-th of the next,
 * down to about minEpochs. For 3..30 epochs and factor 3: [3, 10, 30].
 */
export function rungEpochs(minEpochs: number, maxEpochs: number, factor: number): number[] {
  if (minEpochs >= maxEpochs) return [maxEpochs];
  const steps = Math.floor(Math.log(maxEpochs / minEpochs) / Math.log(factor) + 1e-9);
  const epochs = Array.from({ length: steps + 1 }, (_, k) => Math.max(1, Math.round(maxEpochs / factor ** (steps - k))));
  return epochs.filter((value, i) => i === 0 || value > epochs[i - 1]);
}

/** Trials promoted to each rung by synchronous halving: all of them at first, then the best 1/factor of the previous rung. */
export function rungSizes(trials: number, rungs: number, factor: number): number[] {
  const sizes = [trials];
  for (let k = 1; k < rungs; k++) sizes.push(Math.max(1, Math.floor(sizes[k - 1] / factor)));
  return sizes;
}

/** A trial's standing at one rung. */
export interface RungStanding {
  trial: number;
  /** Best validation accuracy so far; null: the trial diverged. */
  valAccuracy: number | null;
}

/** Better first: higher validation accuracy; diverged trials last; ties to the earlier trial. */
export function compareResults(a: RungStanding, b: RungStanding): number {
  return (b.valAccuracy ?? -1) - (a.valAccuracy ?? -1) || a.trial - b.trial;
}

/** What the rule needs to know about one rung k (not the last) at one moment. */
export interface RungCounts {
  /** Results recorded at rung k. */
  results: number;
  /** Jobs of rung k not yet recorded (waiting or running). */
  pending: number;
  /** Synchronous halving's size of rung k + 1 (rungSizes). */
  nextSize: number;
}

/**
 * How many of rung k's best results may have gone on to rung k + 1 by now. Synchronous: none
 * while the rung has jobs pending, then the next rung's planned size. Asynchronous: the top
 * 1/eta of the results so far, floor(results / eta), however many jobs are pending.
 */
export function promotionQuota(halving: Halving, reductionFactor: number, rung: RungCounts): number {
  if (halving === 'sync') return rung.pending > 0 ? 0 : rung.nextSize;
  return Math.floor(rung.results / reductionFactor);
}

/**
 * Which trials a new result at rung k can have made promotable, so that a study need not rank
 * the whole rung after every result (`results`: the rung's results, the new one included).
 * Synchronous halving decides the whole top at once ('top'). Under asynchronous halving a
 * trial's rank only falls as results arrive and the quota only grows, so a trial passed over
 * when its result arrived can only become promotable when the quota grows by one, and then only
 * the trial at the quota's last place: 'new-and-boundary' when this result grew the quota, else
 * 'new' (the new result alone, if it ranks within the quota).
 */
export function promotionScope(halving: Halving, reductionFactor: number, results: number): 'top' | 'new' | 'new-and-boundary' {
  if (halving === 'sync') return 'top';
  return Math.floor(results / reductionFactor) > Math.floor((results - 1) / reductionFactor) ? 'new-and-boundary' : 'new';
}

/**
 * The trials to promote now: the `quota` best of the rung's results (diverged trials never go
 * on), less those already promoted. Under asynchronous halving a promotion is never taken back:
 * a trial promoted early stays promoted when better results arrive later, as in ASHA.
 */
export function trialsToPromote(standings: readonly RungStanding[], promoted: ReadonlySet<number>, quota: number): number[] {
  return standings
    .filter((standing) => standing.valAccuracy !== null)
    .sort(compareResults)
    .slice(0, quota)
    .filter((standing) => !promoted.has(standing.trial))
    .map((standing) => standing.trial);
}
