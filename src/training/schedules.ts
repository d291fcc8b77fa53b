/** Learning-rate schedules, as functions of training progress measured in epochs. */
export const SCHEDULE_NAMES = ['constant', 'step', 'cosine', 'triangular'] as const;
export type ScheduleName = (typeof SCHEDULE_NAMES)[number];

export interface Schedule {
  name: ScheduleName;
  /** For `step`: epochs between decays. Default 10. */
  stepEpochs?: number;
  /** For `step`: factor applied at each decay. Default 0.1. */
  gamma?: number;
  /** For `triangular`: the share of training spent rising to the peak. Default 0.2. */
  warmup?: number;
}

/**
 * The learning rate after `progress` epochs (fractional: 2.5 is halfway through the third).
 * `cosine` anneals from `base` to 0 over `totalEpochs`, updated every step; `triangular` rises
 * linearly from base / 10 to `base` over the first `warmup` of the epochs, then falls linearly
 * to 0 at the end (a one-cycle schedule, as fast CIFAR-10 recipes use).
 */
export function learningRateAt(schedule: Schedule, base: number, progress: number, totalEpochs: number): number {
  switch (schedule.name) {
    case 'constant':
      return base;
    case 'step':
      return base * (schedule.gamma ?? 0.1) ** Math.floor(progress / (schedule.stepEpochs ?? 10));
    case 'cosine':
      return 0.5 * base * (1 + Math.cos((Math.PI * Math.min(progress, totalEpochs)) / totalEpochs));
    case 'triangular': {
      const t = Math.min(progress, totalEpochs) / totalEpochs;
      const warmup = schedule.warmup ?? 0.2;
      return t < warmup ? base * (0.1 + (0.9 * t) / warmup) : (base * (1 - t)) / (1 - warmup);
    }
  }
}
