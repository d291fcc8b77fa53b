/**
 * A study's results as people read them: the trials' table, best first (trials.csv, the status,
 * the report), and the test figures of its best model, evaluated once.
 */
import type { TestMetrics } from '../evaluation/metrics.ts';
import { compareResults } from './halving.ts';
import type { TrialParams } from './space.ts';
import type { TrialRow } from './study-types.ts';
import type { RungResult } from './trial.ts';

/** One row of the results table. */
export interface TrialSummary {
  trial: number;
  params: TrialParams;
  /** Best validation accuracy at the last rung the trial reached (null: diverged). */
  valAccuracy: number | null;
  valLoss: number | null;
  epochs: number;
  rung: number;
  seconds: number;
  failure: string | null;
  /** The trial's validation accuracy per epoch. */
  curve: number[];
}

/** The best trial's model on the test set, evaluated once when the search is over. */
export interface FinalEvaluation {
  trial: number;
  params: TrialParams;
  valAccuracy: number;
  test: TestMetrics;
}

/** The trials' table from the study's records, best first (trials that reached later rungs before the others). */
export function summarize(trials: TrialRow[], results: RungResult[]): TrialSummary[] {
  const last = new Map<number, RungResult>();
  for (const result of results) if ((last.get(result.trial)?.rung ?? -1) < result.rung) last.set(result.trial, result);
  return trials
    .filter((trial) => last.has(trial.id))
    .map((trial) => {
      const result = last.get(trial.id)!;
      const seconds = results.filter((r) => r.trial === trial.id).reduce((sum, r) => sum + r.seconds, 0);
      return {
        trial: trial.id,
        params: trial.params,
        valAccuracy: result.valAccuracy,
        valLoss: result.valLoss,
        epochs: result.epochs,
        rung: result.rung,
        seconds,
        failure: result.failure,
        curve: result.history.map((record) => record.valAccuracy),
      };
    })
    .sort((a, b) => b.rung - a.rung || compareResults(a, b));
}
