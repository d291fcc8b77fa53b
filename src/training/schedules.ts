/** Learning-rate schedules, as functions of training progress measured in epochs. */
export const SCHEDULE_NAMES = ['constant', 'step', 'cosine'] as const;
export type ScheduleName = (typeof SCHEDULE_NAMES)[number];

export interface Schedule {
  name: ScheduleName;
  /** For `step`: epochs between decays. Default 10. */
  stepEpochs?: number;
  /** For `step`: factor applied at each decay. Default 0.1. */
  gamma?: number;
}

/**
 * The learning rate after `progress` epochs (fractional: 2.5 is halfway through the third).
 * `cosine` anneals from `base` to 0 over `totalEpochs`, updated every step.
 */
export function learningRateAt(schedule: Schedule, base: number, progress: number, totalEpochs: number): number {
  switch (schedule.name) {
    case 'constant':
      return base;
    case 'step':
      return base * (schedule.gamma ?? 0.1) ** Math.floor(progress / (schedule.stepEpochs ?? 10));
    case 'cosine':
      return 0.5 * base * (1 + Math.cos((Math.PI * Math.min(progress, totalEpochs)) / totalEpochs));
  }
}
