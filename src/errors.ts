/**
 * An error caused by the user's input (a file, a flag, a value), not by a bug.
 * The CLI prints its message as one line, without a stack trace.
 */
export class UserError extends Error {
  /** Process exit code the CLI uses: 2 for bad usage (flags, values), 1 otherwise. */
  readonly exitCode: number;

  constructor(message: string, exitCode = 1) {
    super(message);
    this.name = 'UserError';
    this.exitCode = exitCode;
  }
}

/** A bad flag or value: exit code 2, like a usage error. */
export class UsageError extends UserError {
  constructor(message: string) {
    super(message, 2);
    this.name = 'UsageError';
  }
}

/**
 * Training stopped because the loss became NaN or infinite. A search records it as the trial's
 * result (its learning rate is too high); a training command reports it as a user error.
 */
export class TrainingDiverged extends UserError {
  constructor(
    /** 1-based epoch and batch at which the loss stopped being finite. */
    readonly epoch: number,
    readonly batch: number,
    /** The loss of that batch: NaN or ±Infinity. */
    readonly loss: number,
  ) {
    super(`Training diverged: the loss became ${loss} at epoch ${epoch}, batch ${batch}; lower the learning rate (--lr) and run again.`);
    this.name = 'TrainingDiverged';
  }
}

/** A signal (Ctrl-C's SIGINT, a container stop's SIGTERM) stopped the work: exit code 128 + its number. */
export class Interrupted extends UserError {
  constructor(readonly signal: 'SIGINT' | 'SIGTERM') {
    super(`interrupted by ${signal}`, signal === 'SIGINT' ? 130 : 143);
    this.name = 'Interrupted';
  }
}

/**
 * Some of a command's inputs (files) failed and each was already reported on its own line, the
 * others answered: the CLI prints nothing more and exits with code 1.
 */
export class PartialFailure extends UserError {
  constructor(
    readonly failed: number,
    readonly total: number,
  ) {
    super(`${failed} of ${total} inputs could not be processed`);
    this.name = 'PartialFailure';
  }
}
