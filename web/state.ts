/** What the page's tabs share: the test images, the loaded models, the runs to look at, the image being classified. */
import type { LabelledImages } from '../src/data/verify.ts';
import type { TestMetrics } from '../src/evaluation/metrics.ts';
import type { Architecture } from '../src/models/sequential.ts';
import type { EpochRecord } from '../src/training/fit.ts';
import type { PageModel } from './engine.ts';
import type { PageEngine } from './protocol.ts';

/** The model the worker is training, as it last sent it: its layers, and its weights after `step` steps. */
export interface LiveWeights {
  /** Names the run: `page MLP 2`. */
  title: string;
  architecture: Architecture;
  /** [parameters] in the model's layout (Sequential.values); null before the first snapshot. */
  values: Float32Array | null;
  epoch: number;
  step: number;
  /** Whether the run is still training. */
  training: boolean;
}

/** A finished run as the Look tab shows it, as report.html does: curves, confusion matrix, report, galleries. */
export interface RunView {
  id: string;
  title: string;
  history: EpochRecord[];
  bestEpoch: number;
  test: TestMetrics;
  /** [10000, 10]: each test image's probabilities, for the galleries; null where the run saved none. */
  probabilities: Float32Array | null;
  facts: [string, string][];
}

export class AppState {
  /** The official test set, once the data is loaded. */
  test: LabelledImages | null = null;
  /** Where models train and run: WebAssembly, or WebGPU where the browser gives an adapter (the page then starts on it). */
  engine: PageEngine = 'wasm';
  readonly models: PageModel[] = [];
  readonly runs: RunView[] = [];
  /** The image Try classifies now (28x28, light on dark) and what it is; null before there is one. */
  image: { pixels: Uint8Array; what: string } | null = null;
  /** The run the worker is training (or trained last), for the Inside tab; null before the first. */
  live: LiveWeights | null = null;
  private readonly listeners = new Set<() => void>();
  private readonly imageListeners = new Set<() => void>();
  private readonly liveListeners = new Set<() => void>();

  onChange(listener: () => void): void {
    this.listeners.add(listener);
  }

  private changed(): void {
    for (const listener of this.listeners) listener();
  }

  setTest(test: LabelledImages): void {
    this.test = test;
    this.changed();
  }

  /** Adds a model, replacing one with the same id. */
  addModel(model: PageModel): void {
    const index = this.models.findIndex((m) => m.id === model.id);
    if (index >= 0) this.models[index] = model;
    else this.models.push(model);
    this.changed();
  }

  /** Removes a model (forgotten by the browser), closing it. */
  async removeModel(id: string): Promise<void> {
    const index = this.models.findIndex((m) => m.id === id);
    if (index < 0) return;
    const [model] = this.models.splice(index, 1);
    const run = this.runs.findIndex((r) => r.id === id);
    if (run >= 0) this.runs.splice(run, 1);
    this.changed();
    await model.close();
  }

  /** Hears of a new image to classify (Train's live view draws the network's insides for it). */
  onImage(listener: () => void): void {
    this.imageListeners.add(listener);
  }

  setImage(image: { pixels: Uint8Array; what: string } | null): void {
    this.image = image;
    for (const listener of this.imageListeners) listener();
  }

  /** Hears of the training run's new weights (or of a new run). */
  onLive(listener: () => void): void {
    this.liveListeners.add(listener);
  }

  setLive(live: LiveWeights | null): void {
    this.live = live;
    for (const listener of this.liveListeners) listener();
  }

  /** Switches the engine; the loaded models move to it. */
  async setEngine(engine: PageEngine): Promise<void> {
    if (engine === this.engine) return;
    this.engine = engine;
    this.changed();
    const moved = await Promise.all(this.models.map((model) => model.moveTo(engine)));
    this.models.splice(0, this.models.length, ...moved);
    this.changed();
  }

  addRun(run: RunView): void {
    const index = this.runs.findIndex((r) => r.id === run.id);
    if (index >= 0) this.runs[index] = run;
    else this.runs.push(run);
    this.changed();
  }
}
