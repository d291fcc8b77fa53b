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
