/**
 * The Train tab: the data (from the server, or four files picked from disk), the model and its
 * settings, and the run in the worker with live curves, speed and time left; stop and resume;
 * at the end the test figures, and the model joins the ones Try runs.
 */
import type { AppInfo } from '../src/app/api.ts';
import { DATA_FILES, type DataFileKey } from '../src/data/manifest.ts';
import { DEFAULT_CNN_CONFIG, DEFAULT_MLP_CONFIG, type CnnConfig, type MlpConfig } from '../src/runs/configs.ts';
import type { EpochRecord } from '../src/training/fit.ts';
import { LiveCurve, type CurvePoint } from './charts.ts';
import { byId, element, percent } from './dom.ts';
import { pageModel } from './engine.ts';
import { renderRun } from './look.ts';
import type { FromWorker, ModelFiles, PageEngine, PageJob, ToWorker } from './protocol.ts';
import type { AppState, RunView } from './state.ts';

/**
 * The form starts from `fmnist train`'s defaults, with fewer epochs (and images for the CNN) so
 * that a first run takes a minute or two.
 */
const PAGE_DEFAULTS: { mlp: MlpConfig; cnn: CnnConfig } = {
  mlp: { ...DEFAULT_MLP_CONFIG, epochs: 10 },
  cnn: { ...DEFAULT_CNN_CONFIG, epochs: 3, trainLimit: 6000 },
};

const KIND_TITLES = { mlp: 'MLP', cnn: 'CNN' } as const;

/** `fmnist train` with the flags that give the same run (flags at their defaults left out). */
export function cliCommand(job: PageJob): string {
  const defaults: Record<string, unknown> = job.kind === 'mlp' ? DEFAULT_MLP_CONFIG : DEFAULT_CNN_CONFIG;
  const config: Record<string, unknown> = { ...job.config };
  const flags = job.config.backend === 'webgpu' ? ['--backend webgpu', `--seed ${job.config.seed}`] : ['--backend wasm', `--threads ${job.config.threads}`, `--seed ${job.config.seed}`];
  const named: [string, string][] = [
    ['epochs', '--epochs'],
    ['learningRate', '--lr'],
    ['batchSize', '--batch-size'],
    ['trainLimit', '--train-limit'],
    ['validationFraction', '--validation-fraction'],
    ['hidden', '--hidden'],
    ['dropout', '--dropout'],
    ['channels', '--channels'],
    ['features', '--features'],
    ['convDropout', '--conv-dropout'],
    ['featureDropout', '--feature-dropout'],
    ['augmentShift', '--augment-shift'],
  ];
  for (const [field, flag] of named) {
    const value = config[field];
    if (value === undefined || value === null || String(value) === String(defaults[field])) continue;
    flags.push(`${flag} ${Array.isArray(value) ? value.join(',') : value}`);
  }
  return `fmnist train ${job.kind} ${flags.join(' ')}`;
}

const clock = (seconds: number) => {
  const whole = Math.round(seconds);
  const minutes = Math.floor(whole / 60);
  return minutes >= 60 ? `${Math.floor(minutes / 60)}:${String(minutes % 60).padStart(2, '0')}:${String(whole % 60).padStart(2, '0')}` : `${minutes}:${String(whole % 60).padStart(2, '0')}`;
};
const count = (value: number) => value.toLocaleString('en-US');

export class TrainTab {
  private readonly form = byId<HTMLFormElement>('train-form');
  private readonly trainButton = byId<HTMLButtonElement>('train-button');
  private readonly stopButton = byId<HTMLButtonElement>('stop-button');
  private readonly resumeButton = byId<HTMLButtonElement>('resume-button');
  private readonly formError = byId('form-error');
  private readonly dataStatus = byId('data-status');
  private readonly progress = byId<HTMLProgressElement>('progress');
  private readonly progressText = byId('progress-text');
  private readonly speed = byId('speed');
  private readonly epochs = byId('epochs-table').querySelector('tbody') as HTMLTableSectionElement;
  private readonly loss = new LiveCurve(byId('loss-chart'), 'loss');
  private readonly accuracy = new LiveCurve(byId('accuracy-chart'), 'accuracy');
  private dataLoaded = false;
  private training = false;
  /** The job last started, which Resume continues. */
  private job: PageJob | null = null;
  /** Whether that job was stopped (and so can be resumed). */
  private resumable = false;
  private runs = 0;
  private kernels = '';

  constructor(
    private readonly worker: Worker,
    private readonly state: AppState,
    private readonly threads: { isolated: boolean; cores: number; max: number },
    private readonly info: AppInfo | null,
  ) {
    const select = this.input<HTMLSelectElement>('threads');
    for (let t = 1; t <= threads.max; t++) select.append(element('option', { value: String(t), text: String(t) }));
    select.value = String(threads.max);
    this.input<HTMLSelectElement>('engine').addEventListener('change', (event) => void this.state.setEngine((event.target as HTMLSelectElement).value as PageEngine));
    this.state.onChange(() => this.showEngine());
    for (const radio of this.form.querySelectorAll<HTMLInputElement>('input[name="kind"]')) radio.addEventListener('change', () => this.setKind(radio.value as PageJob['kind']));
    this.setKind('mlp');
    this.form.addEventListener('input', () => this.showCommand());
    this.form.addEventListener('submit', (event) => {
      event.preventDefault();
      this.start(false);
    });
    this.stopButton.addEventListener('click', () => this.send({ type: 'stop' }));
    this.resumeButton.addEventListener('click', () => this.start(true));
    byId<HTMLInputElement>('data-files').addEventListener('change', (event) => this.pickFiles((event.target as HTMLInputElement).files));
  }

  /** Offers WebGPU beside WebAssembly, named by its adapter, and chooses it (the page starts on it where the browser has one). */
  offerWebGpu(adapter: string): void {
    const select = this.input<HTMLSelectElement>('engine');
    select.append(element('option', { value: 'webgpu', text: `WebGPU (${adapter})` }));
    select.value = 'webgpu';
    void this.state.setEngine('webgpu');
  }

  /** The engine switch as the state has it; threads matter to WebAssembly only. */
  private showEngine(): void {
    const engine = this.input<HTMLSelectElement>('engine');
    if (engine.value !== this.state.engine) engine.value = this.state.engine;
    const threads = this.input<HTMLSelectElement>('threads');
    threads.disabled = this.state.engine === 'webgpu' || this.training;
    engine.disabled = this.training;
    this.showCommand();
  }

  private send(message: ToWorker): void {
    this.worker.postMessage(message);
  }

  private input<T extends HTMLInputElement | HTMLSelectElement = HTMLInputElement>(name: string): T {
    return this.form.elements.namedItem(name) as T;
  }

  private kind(): PageJob['kind'] {
    return (this.form.querySelector<HTMLInputElement>('input[name="kind"]:checked')?.value ?? 'mlp') as PageJob['kind'];
  }

  /** Shows the chosen model's fields, filled with its defaults; the other model's are disabled (and so not validated). */
  private setKind(kind: PageJob['kind']): void {
    const config: Record<string, unknown> = { ...PAGE_DEFAULTS[kind] };
    for (const field of this.form.querySelectorAll<HTMLElement>('.mlp-only, .cnn-only')) {
      const shown = field.classList.contains(`${kind}-only`);
      field.hidden = !shown;
      for (const control of field.querySelectorAll('input')) control.disabled = !shown;
    }
    for (const name of ['learningRate', 'epochs', 'batchSize', 'trainLimit', 'validationFraction', 'seed', 'hidden', 'dropout', 'channels', 'features', 'convDropout', 'featureDropout', 'augmentShift']) {
      const value = config[name];
      if (value === undefined) continue;
      this.input(name).value = value === null ? '' : Array.isArray(value) ? value.join(',') : String(value);
    }
    this.showCommand();
  }

  /** The job the form describes, or a sentence saying what to correct. */
  private readJob(): PageJob | string {
    if (!this.form.checkValidity()) {
      const invalid = this.form.querySelector<HTMLInputElement>(':invalid:not(fieldset)');
      const label = invalid ? this.form.querySelector(`label[for="${invalid.id}"]`)?.textContent : null;
      return `Check the field ${label ? `"${label}"` : 'marked in red'}: ${invalid?.validationMessage ?? 'its value is not valid'}`;
    }
    const number = (name: string) => Number(this.input(name).value);
    const limit = this.input('trainLimit').value.trim();
    const common = {
      learningRate: number('learningRate'),
      epochs: number('epochs'),
      batchSize: number('batchSize'),
      trainLimit: limit === '' ? null : Number(limit),
      validationFraction: number('validationFraction'),
      seed: number('seed'),
      backend: this.state.engine,
      threads: number('threads'),
    };
    if (!(common.learningRate > 0)) return 'The learning rate must be greater than 0.';
    const kind = this.kind();
    if (kind === 'mlp') return { kind, config: { ...PAGE_DEFAULTS.mlp, ...common, hidden: number('hidden'), dropout: number('dropout') } };
    const channels = this.input('channels').value.split(',').map((part) => Number(part.trim()));
    if (channels.length !== 5 || !channels.every((c) => Number.isInteger(c) && c >= 1)) return 'Give five whole numbers of at least 1 for the channels, separated by commas.';
    return {
      kind,
      config: {
        ...PAGE_DEFAULTS.cnn,
        ...common,
        channels,
        features: number('features'),
        convDropout: number('convDropout'),
        featureDropout: number('featureDropout'),
        augmentShift: number('augmentShift'),
      },
    };
  }

  private showCommand(): void {
    const job = this.readJob();
    byId('cli-command').textContent = typeof job === 'string' ? '(complete the settings)' : cliCommand(job);
  }

  private updateButtons(): void {
    this.trainButton.disabled = !this.dataLoaded || this.training;
    this.stopButton.disabled = !this.training;
    this.resumeButton.disabled = this.training || this.job === null || !this.resumable;
    this.showEngine();
  }

  /** Loads the server's files (when served by fmnist app). */
  loadServerData(): void {
    if (this.info?.data === null || this.info === null) {
      this.dataStatus.textContent = this.info === null
        ? 'This page is not served by fmnist app: pick the four files below.'
        : `The server has no data (${this.info.dataProblem ?? 'none found'}): pick the four files below.`;
      return;
    }
    const files = {} as Record<DataFileKey, { name: string; url: string }>;
    for (const [key, file] of Object.entries(this.info.data) as [DataFileKey, { name: string; path: string }][]) {
      files[key] = { name: file.name, url: new URL(file.path, location.href).href };
    }
    this.dataStatus.textContent = 'Loading the four files from the server and checking their SHA-256…';
    this.send({ type: 'load-data', source: { type: 'server', files }, allowModified: this.info.allowModifiedData });
  }

  private pickFiles(list: FileList | null): void {
    const picked = [...(list ?? [])];
    const files = {} as Record<DataFileKey, File>;
    for (const spec of DATA_FILES) {
      const file = picked.find((f) => f.name === spec.name || f.name === `${spec.name}.gz`);
      if (file) files[spec.key] = file;
    }
    const missing = DATA_FILES.filter((spec) => !files[spec.key]).map((spec) => `${spec.name}.gz`);
    if (missing.length > 0) {
      this.dataStatus.textContent = `Pick all four files at once; missing: ${missing.join(', ')}.`;
      this.dataStatus.classList.add('error');
      return;
    }
    this.dataStatus.classList.remove('error');
    this.dataStatus.textContent = 'Reading the four files and checking their SHA-256…';
    this.send({ type: 'load-data', source: { type: 'files', files }, allowModified: this.info?.allowModifiedData ?? false });
  }

  private start(resume: boolean): void {
    const job = resume ? this.job : this.readJob();
    this.formError.hidden = true;
    if (typeof job === 'string' || job === null) {
      this.formError.textContent = job ?? 'There is no stopped run to resume.';
      this.formError.hidden = false;
      return;
    }
    const threads = Number(this.input('threads').value);
    this.job = { ...job, config: { ...job.config, threads } } as PageJob;
    this.training = true;
    this.resumable = false;
    this.updateButtons();
    this.progressText.textContent = resume ? 'Resuming…' : 'Starting…';
    if (!resume) {
      byId('results-card').hidden = true;
      this.epochs.replaceChildren();
      this.speed.textContent = '';
    }
    this.send({ type: 'train', job: this.job, threads, resume });
  }

  /** Curve points of finished epochs: each epoch's training and validation figure at its end. */
  private static epochPoints(records: EpochRecord[], what: 'loss' | 'accuracy'): CurvePoint[] {
    return records.flatMap((r) => [
      { epoch: r.epoch, set: 'training' as const, value: what === 'loss' ? r.trainLoss : r.trainAccuracy },
      { epoch: r.epoch, set: 'validation' as const, value: what === 'loss' ? r.valLoss : r.valAccuracy },
    ]);
  }

  private addEpochRow(record: EpochRecord, imagesPerSecond: number | null): void {
    const row = element(
      'tr',
      { 'data-epoch': String(record.epoch), 'data-val-accuracy': String(record.valAccuracy), 'data-train-loss': String(record.trainLoss), 'data-val-loss': String(record.valLoss) },
      ...[
        String(record.epoch),
        record.trainLoss.toFixed(4),
        percent(record.trainAccuracy),
        record.valLoss.toFixed(4),
        percent(record.valAccuracy),
        record.seconds.toFixed(1),
        imagesPerSecond === null ? '' : count(Math.round(imagesPerSecond)),
      ].map((text) => element('td', { text })),
    );
    this.epochs.append(row);
  }

  private finished(): void {
    this.training = false;
    this.updateButtons();
  }

  /** A model the worker made joins the page's models (Try) under a name of its own. */
  private async addModel(files: ModelFiles, label: string): Promise<void> {
    const model = await pageModel(`page:${this.runs}`, label, files, null, 'this page/', this.state.engine);
    this.state.addModel(model);
  }

  private downloads(files: ModelFiles): void {
    const link = (name: string, blob: Blob) => element('a', { href: URL.createObjectURL(blob), download: name, text: `download ${name}` });
    byId('downloads').replaceChildren(
      link('model.json', new Blob([JSON.stringify(files.description, null, 2)], { type: 'application/json' })),
      link('model.safetensors', new Blob([files.weights as Uint8Array<ArrayBuffer>], { type: 'application/octet-stream' })),
    );
  }

  handle(message: FromWorker): void {
    switch (message.type) {
      case 'data': {
        this.dataLoaded = true;
        this.updateButtons();
        const modified = message.checks.filter((check) => check.status === 'modified').length;
        this.dataStatus.classList.remove('error');
        this.dataStatus.textContent = `Data: ${count(message.trainingCount)} training and ${count(message.test.count)} test images; each file's SHA-256 checked: ${
          modified === 0 ? 'the four official files' : `${modified} differ from the official release (loaded as the server allows)`
        }.`;
        this.state.setTest(message.test);
        break;
      }
      case 'data-error':
        this.dataStatus.classList.add('error');
        this.dataStatus.textContent = `The data could not be loaded: ${message.message} Pick the four files again.`;
        break;
      case 'started': {
        this.kernels = message.kernels;
        const job = this.job!;
        this.progressText.textContent = `Training the ${KIND_TITLES[job.kind]} on ${count(message.trainCount)} images, validating on ${count(message.validationCount)}; ${message.kernels}${
          message.epochsDone > 0 ? `; resuming after epoch ${message.epochsDone}` : ''
        }.`;
        this.epochs.replaceChildren();
        for (const record of message.history) this.addEpochRow(record, null);
        this.loss.reset(job.config.epochs, TrainTab.epochPoints(message.history, 'loss'));
        this.accuracy.reset(job.config.epochs, TrainTab.epochPoints(message.history, 'accuracy'));
        this.progress.value = message.epochsDone / job.config.epochs;
        break;
      }
      case 'progress': {
        const at = message.epoch - 1 + message.batch / message.batches;
        this.progress.value = at / message.epochs;
        this.progressText.textContent = `Epoch ${message.epoch} of ${message.epochs}, batch ${message.batch} of ${message.batches}: loss ${message.loss.toFixed(4)}, accuracy ${percent(message.accuracy)}.`;
        if (message.imagesPerSecond !== null) {
          this.speed.textContent = `${count(Math.round(message.imagesPerSecond))} images/s on ${this.kernels}; about ${clock(message.etaSeconds ?? 0)} left.`;
        }
        this.loss.add([{ epoch: at, set: 'training', value: message.loss }]);
        this.accuracy.add([{ epoch: at, set: 'training', value: message.accuracy }]);
        break;
      }
      case 'epoch': {
        const { record } = message;
        this.addEpochRow(record, message.imagesPerSecond);
        this.loss.add([{ epoch: record.epoch, set: 'validation', value: record.valLoss }]);
        this.accuracy.add([{ epoch: record.epoch, set: 'validation', value: record.valAccuracy }]);
        if (message.imagesPerSecond !== null) {
          this.speed.dataset.imagesPerSecond = String(message.imagesPerSecond);
          this.speed.textContent = `${count(Math.round(message.imagesPerSecond))} images/s in epoch ${record.epoch} on ${this.kernels}.`;
        }
        break;
      }
      case 'stopped': {
        this.resumable = true;
        this.finished();
        this.progressText.textContent =
          message.epochsDone === 0
            ? 'Stopped before the first epoch ended; Resume starts it again.'
            : `Stopped; the ${message.epochsDone} finished epoch${message.epochsDone === 1 ? '' : 's'} are kept, and Resume continues from there (as fmnist train --resume does).`;
        if (message.model) {
          this.runs++;
          void this.addModel(message.model, `page ${KIND_TITLES[this.job!.kind]} ${this.runs} (stopped, epoch ${message.bestEpoch})`);
        }
        break;
      }
      case 'done': {
        this.finished();
        this.runs++;
        const job = this.job!;
        const best = message.history[message.bestEpoch - 1];
        this.progress.value = 1;
        this.progressText.textContent = `Done in ${clock(message.seconds)}: test accuracy ${percent(message.test.accuracy)} with the weights of epoch ${message.bestEpoch}${message.stoppedEarly ? ' (stopped early)' : ''}.`;
        const run: RunView = {
          id: `page:${this.runs}`,
          title: `page ${KIND_TITLES[job.kind]} ${this.runs}`,
          history: message.history,
          bestEpoch: message.bestEpoch,
          test: message.test,
          probabilities: message.probabilities,
          facts: [
            ['test accuracy', percent(message.test.accuracy)],
            ['validation accuracy', `${percent(best.valAccuracy)} (epoch ${message.bestEpoch})`],
            ['epochs run', `${message.history.length}${message.stoppedEarly ? ' (stopped early)' : ''}`],
            ['training time', `${message.history.reduce((sum, r) => sum + r.seconds, 0).toFixed(1)} s`],
            ['parameters', count(message.parameterCount)],
            ['backend', this.kernels],
          ],
        };
        this.state.addRun(run);
        byId('results-card').hidden = false;
        this.downloads(message.model);
        void renderRun(byId('results'), run, this.state.test);
        void this.addModel(message.model, run.title);
        break;
      }
      case 'error':
        this.finished();
        this.progressText.textContent = `Training stopped with an error: ${message.message}`;
        break;
    }
  }
}
