import Database from 'better-sqlite3';
import type { EpochRecord } from '../training/fit.ts';
import type { TrialParams } from './space.ts';

/** What a trial reached at one rung of successive halving. */
export interface RungResult {
  trial: number;
  rung: number;
  /** Epochs trained in all when the rung was reached. */
  epochs: number;
  /** Best validation accuracy over those epochs (null when the trial diverged). */
  valAccuracy: number | null;
  valLoss: number | null;
  bestEpoch: number | null;
  /** Seconds of training for this rung alone. */
  seconds: number;
  /** Every epoch so far (the trial's learning curve). */
  history: EpochRecord[];
  /** Why the trial ended badly, e.g. a diverging loss; null otherwise. */
  failure: string | null;
}

export interface TrialRow {
  id: number;
  params: TrialParams;
}

/**
 * The search's durable record, in SQLite (better-sqlite3): its settings, every trial's
 * hyperparameters, each rung result as it arrives, each time a job was started, and the final
 * test evaluation. Every write is its own transaction, so a search killed at any moment keeps
 * all it had recorded; WAL mode keeps a reader from blocking the writer.
 */
export class SearchJournal {
  private readonly db: Database.Database;

  constructor(path: string) {
    this.db = new Database(path);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = FULL');
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS trials (id INTEGER PRIMARY KEY, params TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS results (
        trial INTEGER NOT NULL REFERENCES trials(id), rung INTEGER NOT NULL, epochs INTEGER NOT NULL,
        val_accuracy REAL, val_loss REAL, best_epoch INTEGER, seconds REAL NOT NULL,
        history TEXT NOT NULL, failure TEXT, recorded_at TEXT NOT NULL,
        PRIMARY KEY (trial, rung));
      CREATE TABLE IF NOT EXISTS attempts (trial INTEGER NOT NULL, rung INTEGER NOT NULL, started_at TEXT NOT NULL);
    `);
  }

  close(): void {
    this.db.close();
  }

  getMeta<T>(key: string): T | null {
    const row = this.db.prepare('SELECT value FROM meta WHERE key = ?').get(key) as { value: string } | undefined;
    return row ? (JSON.parse(row.value) as T) : null;
  }

  setMeta(key: string, value: unknown): void {
    this.db.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value').run(key, JSON.stringify(value));
  }

  /** Records the trials' hyperparameters once, all in one transaction. */
  addTrials(trials: TrialRow[]): void {
    const insert = this.db.prepare('INSERT INTO trials (id, params) VALUES (?, ?)');
    this.db.transaction(() => {
      for (const trial of trials) insert.run(trial.id, JSON.stringify(trial.params));
    })();
  }

  trials(): TrialRow[] {
    const rows = this.db.prepare('SELECT id, params FROM trials ORDER BY id').all() as { id: number; params: string }[];
    return rows.map((row) => ({ id: row.id, params: JSON.parse(row.params) as TrialParams }));
  }

  recordAttempt(trial: number, rung: number): void {
    this.db.prepare('INSERT INTO attempts (trial, rung, started_at) VALUES (?, ?, ?)').run(trial, rung, new Date().toISOString());
  }

  attempts(): { trial: number; rung: number }[] {
    return this.db.prepare('SELECT trial, rung FROM attempts ORDER BY rowid').all() as { trial: number; rung: number }[];
  }

  recordResult(result: RungResult): void {
    this.db
      .prepare(
        'INSERT INTO results (trial, rung, epochs, val_accuracy, val_loss, best_epoch, seconds, history, failure, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
      )
      .run(result.trial, result.rung, result.epochs, result.valAccuracy, result.valLoss, result.bestEpoch, result.seconds, JSON.stringify(result.history), result.failure, new Date().toISOString());
  }

  results(): RungResult[] {
    const rows = this.db.prepare('SELECT * FROM results ORDER BY rung, trial').all() as {
      trial: number;
      rung: number;
      epochs: number;
      val_accuracy: number | null;
      val_loss: number | null;
      best_epoch: number | null;
      seconds: number;
      history: string;
      failure: string | null;
    }[];
    return rows.map((row) => ({
      trial: row.trial,
      rung: row.rung,
      epochs: row.epochs,
      valAccuracy: row.val_accuracy,
      valLoss: row.val_loss,
      bestEpoch: row.best_epoch,
      seconds: row.seconds,
      history: JSON.parse(row.history) as EpochRecord[],
      failure: row.failure,
    }));
  }
}
