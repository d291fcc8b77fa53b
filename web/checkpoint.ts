import type { Checkpointer, FitState } from '../src/training/fit.ts';

/** A deep copy: the state fit hands over holds views of the model's and the optimiser's live buffers. */
function copyState(state: FitState): FitState {
  return {
    ...state,
    values: state.values.slice(),
    bestValues: state.bestValues.slice(),
    optimizer: { steps: state.optimizer.steps, buffers: state.optimizer.buffers.map((buffer) => buffer.slice()) },
    rngs: state.rngs.map((rng) => structuredClone(rng)),
    order: state.order.slice(),
    history: state.history.map((record) => ({ ...record })),
    ...(state.average ? { average: { values: state.average.values.slice(), steps: state.average.steps } } : {}),
    ...(state.snapshots ? { snapshots: { values: state.snapshots.values.slice(), count: state.snapshots.count } } : {}),
  };
}

/**
 * Checkpoints kept in memory, the page's counterpart of the run folder's checkpoint/: after
 * every epoch fit saves its whole state here, and a job started again with the same checkpointer
 * continues from it exactly as `fmnist train --resume` does from the folder.
 */
export class MemoryCheckpointer implements Checkpointer {
  private saved: FitState | null = null;

  load(): FitState | null {
    return this.saved && copyState(this.saved);
  }

  save(state: FitState): void {
    this.saved = copyState(state);
  }

  /** The last saved state, not copied: to read only. */
  get latest(): FitState | null {
    return this.saved;
  }
}
