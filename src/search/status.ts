/**
 * Where a study stands (`fmnist search status`): its trials by state, each rung's results, the
 * workers seen with their last heartbeat, and the best trial so far. Read-only.
 */
import type { SearchSettings } from './settings.ts';
import { summarize, type TrialSummary } from './summary.ts';
import { openStorage } from './storage.ts';
import { Study, type JobRow, type RecordedResult } from './study.ts';

/**
 * A trial's state. running / waiting: it has a job in that state. complete: it trained all its
 * epochs. failed: it diverged. pruned: it stopped at an earlier rung (under asynchronous halving,
 * until the study ends, a later result may still promote it).
 */
export type TrialState = 'waiting' | 'running' | 'complete' | 'pruned' | 'failed';
export const TRIAL_STATES: readonly TrialState[] = ['running', 'waiting', 'complete', 'pruned', 'failed'];

export interface StudyStatus {
  study: string;
  /** The database, without a password. */
  storage: string;
  settings: SearchSettings;
  rungs: number[];
  trials: number;
  /** Trials in each state. */
  states: Record<TrialState, number>;
  perRung: { rung: number; epochs: number; results: number; running: number; waiting: number; bestValAccuracy: number | null }[];
  workers: { id: string; host: string; pid: number; software: string; startedAt: string; heartbeatSecondsAgo: number; jobsDone: number; running: { trial: number; rung: number }[] }[];
  /** The trial at the highest rung with the best validation accuracy; null before any result. */
  best: TrialSummary | null;
  /** Nothing left to train: no job waiting or running. */
  finished: boolean;
}

export function trialState(trial: number, jobs: JobRow[], results: RecordedResult[], lastRung: number): TrialState {
  const own = jobs.filter((job) => job.trial === trial);
  if (own.some((job) => job.state === 'running')) return 'running';
  if (own.some((job) => job.state === 'waiting')) return 'waiting';
  const last = results.filter((result) => result.trial === trial).sort((a, b) => b.rung - a.rung)[0];
  if (!last) return 'waiting';
  if (last.failure !== null) return 'failed';
  return last.rung === lastRung ? 'complete' : 'pruned';
}

export async function studyStatus(location: string, name?: string): Promise<StudyStatus> {
  const storage = await openStorage(location);
  try {
    const study = await Study.open(storage, name);
    const { reads } = study;
    const [trials, jobs, results, workers, now] = [await reads.trials(), await reads.jobs(), await reads.results(), await reads.workers(), await reads.clock()];
    const lastRung = study.rungs.length - 1;
    const states = Object.fromEntries(TRIAL_STATES.map((state) => [state, 0])) as Record<TrialState, number>;
    for (const trial of trials) states[trialState(trial.id, jobs, results, lastRung)]++;
    const perRung = study.rungs.map((epochs, rung) => {
      const accuracies = results.filter((result) => result.rung === rung && result.valAccuracy !== null).map((result) => result.valAccuracy!);
      return {
        rung,
        epochs,
        results: results.filter((result) => result.rung === rung).length,
        running: jobs.filter((job) => job.rung === rung && job.state === 'running').length,
        waiting: jobs.filter((job) => job.rung === rung && job.state === 'waiting').length,
        bestValAccuracy: accuracies.length > 0 ? Math.max(...accuracies) : null,
      };
    });
    const table = summarize(trials, results);
    return {
      study: study.name,
      storage: storage.location,
      settings: study.settings,
      rungs: study.rungs,
      trials: trials.length,
      states,
      perRung,
      workers: workers.map((worker) => ({
        id: worker.id,
        host: worker.host,
        pid: worker.pid,
        software: worker.software,
        startedAt: new Date(worker.startedAt).toISOString(),
        heartbeatSecondsAgo: Math.max(0, (now - worker.heartbeatAt) / 1000),
        jobsDone: worker.jobsDone,
        running: jobs.filter((job) => job.state === 'running' && job.worker === worker.id).map((job) => ({ trial: job.trial, rung: job.rung })),
      })),
      best: table.find((trial) => trial.valAccuracy !== null) ?? null,
      finished: jobs.every((job) => job.state === 'done'),
    };
  } finally {
    await storage.close();
  }
}

const percent = (value: number | null) => (value === null ? '-' : `${(value * 100).toFixed(2)}%`);

/** The status as the lines `fmnist search status` prints. */
export function formatStatus(status: StudyStatus): string {
  const { settings } = status;
  const lines = [
    `study "${status.study}" in ${status.storage}: ${settings.model}, ${status.trials} trials, ${settings.halving === 'sync' ? 'synchronous' : 'asynchronous'} halving, rungs at ${status.rungs.join(', ')} epochs`,
    `trials: ${TRIAL_STATES.map((state) => `${status.states[state]} ${state}`).join(', ')}${status.finished ? ' (finished: no job left)' : ''}`,
    '',
    'rung  epochs  results  running  waiting  best val',
    ...status.perRung.map((r) =>
      [String(r.rung).padStart(4), String(r.epochs).padStart(7), String(r.results).padStart(8), String(r.running).padStart(8), String(r.waiting).padStart(8), percent(r.bestValAccuracy).padStart(9)].join(' '),
    ),
    '',
    `workers seen: ${status.workers.length}`,
    ...status.workers.map(
      (w) =>
        `  ${w.id}  started ${w.startedAt}  last heartbeat ${w.heartbeatSecondsAgo.toFixed(0)} s ago  ${w.jobsDone} jobs done` +
        (w.running.length > 0 ? `  now: ${w.running.map((job) => `trial ${job.trial} rung ${job.rung}`).join(', ')}` : ''),
    ),
    '',
    status.best
      ? `best so far: trial ${status.best.trial}, validation ${percent(status.best.valAccuracy)} at rung ${status.best.rung} (${status.best.epochs} epochs) ${JSON.stringify(status.best.params)}`
      : 'best so far: no result yet',
  ];
  return lines.join('\n');
}
