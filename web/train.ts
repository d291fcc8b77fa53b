/**
 * The Train tab: the data (from the server, or four files picked from disk), the model and its
 * settings (the form is the CLI's option table, web/form.ts), and the run in the worker with
 * live curves, speed and time left; the learning rate changeable while it trains (marked on the
 * curves); stop and resume; at the end the test figures, and the model is kept in the browser
 * and joins the page's models.
 */
import type { AppInfo } from '../src/app/api.ts';
import { DATA_FILES, type DataFileKey } from '../src/data/manifest.ts';
import { learningRateMarkers } from '../src/reports/charts.ts';
import { TRAINING_OPTIONS } from '../src/runs/options.ts';
import type { EpochRecord } from '../src/training/fit.ts';
import { LiveCurve, type CurvePoint } from './charts.ts';
import { byId, element, percent } from './dom.ts';
import { runFromFiles } from './engine.ts';
import { TrainingForm, trainCommand } from './form.ts';
import type { ModelLibrary } from './library.ts';
import { renderRun } from './look.ts';
import type { FromWorker, PageEngine, PageJob, ToWorker } from './protocol.ts';
import type { AppState } from './state.ts';

const KIND_TITLES = { mlp: 'MLP', cnn: 'CNN' } as const;

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
  private readonly fields = new TrainingForm(byId('fields-first'), byId('fields-rest'));
  private readonly liveRate = byId<HTMLInputElement>('live-lr');
  private readonly liveRateButton = byId<HTMLButtonElement>('live-lr-button');
  private readonly liveRateStatus = byId('live-lr-status');
  private dataLoaded = false;
  private training = false;
  /** The job last started, which Resume continues. */
  private job: PageJob | null = null;
  /** Whether that job was stopped (and so can be resumed). */
  private resumable = false;
  /** The run's title (`page MLP 3`), given when it starts. */
  private title = '';
  private kernels = '';

  constructor(
    private readonly worker: Worker,
    private readonly state: AppState,
    private readonly threads: { isolated: boolean; cores: number; max: number },
    private readonly info: AppInfo | null,
    private readonly library: ModelLibrary,
    /** Whether the weights are wanted as training goes (the Inside tab is shown). */
    private readonly watching: () => boolean,
  ) {
    const select = this.input<HTMLSelectElement>('threads');
    for (let t = 1; t <= threads.max; t++) select.append(element('option', { value: String(t), text: String(t) }));
    select.value = String(threads.max);
    this.input<HTMLSelectElement>('engine').addEventListener('change', (event) => void this.state.setEngine((event.target as HTMLSelectElement).value as PageEngine));
    this.state.onChange(() => this.showEngine());
    for (const radio of this.form.querySelectorAll<HTMLInputElement>('input[name="kind"]')) radio.addEventListener('change', () => this.setKind(radio.value as PageJob['kind']));
    this.setKind('mlp');
    this.form.addEventListener('input', () => this.showCommand());
    this.form.addEventListener('change', () => this.showCommand());
    this.form.addEventListener('submit', (event) => {
      event.preventDefault();
      this.start(false);
    });
    this.stopButton.addEventListener('click', () => this.send({ type: 'stop' }));
    this.resumeButton.addEventListener('click', () => this.start(true));
    this.liveRateButton.addEventListener('click', () => this.changeLearningRate());
    this.liveRate.addEventListener('keydown', (event) => {
      if (event.key === 'Enter') this.changeLearningRate();
    });
    byId<HTMLInputElement>('data-files').addEventListener('change', (event) => this.pickFiles((event.target as HTMLInputElement).files));
  }

  /** Tells the worker whether to send the weights as it trains (the Inside tab shown or not). */
  watch(watch: boolean): void {
    this.send({ type: 'watch', watch });
  }

  /** Asks for the learning rate in the field from the next step on; the option's own check (--lr) says what is wrong with it. */
  private changeLearningRate(): void {
    if (!this.training) return;
    const type = TRAINING_OPTIONS.learningRate.type;
    const value = type.parse(this.liveRate.value);
    if (value === undefined || !type.check(value)) {
      this.liveRateStatus.textContent = `Give ${type.describe}.`;
      this.liveRate.setAttribute('aria-invalid', 'true');
      return;
    }
    this.liveRate.setAttribute('aria-invalid', 'false');
    this.liveRateStatus.textContent = `Asked for ${value}: it applies from the next step.`;
    this.send({ type: 'set-learning-rate', learningRate: value });
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

  /** Builds the chosen model's fields from the option table, filled with the page's defaults. */
  private setKind(kind: PageJob['kind']): void {
    this.fields.show(kind);
    this.showCommand();
  }

  /** The job the form describes, or a sentence saying what to correct. */
  private readJob(): PageJob | string {
    const job = this.fields.read(this.state.engine, Number(this.input('threads').value));
    return 'message' in job ? job.message : job;
  }

  private showCommand(): void {
    const job = this.readJob();
    byId('cli-command').textContent = typeof job === 'string' ? '(complete the settings)' : trainCommand(job);
  }

  private updateButtons(): void {
    this.trainButton.disabled = !this.dataLoaded || this.training;
    this.stopButton.disabled = !this.training;
    this.resumeButton.disabled = this.training || this.job === null || !this.resumable;
    this.liveRate.disabled = !this.training;
    this.liveRateButton.disabled = !this.training;
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
      this.title = `page ${KIND_TITLES[job.kind]} ${this.library.nextRunNumber()}`;
      byId('results-card').hidden = true;
      this.epochs.replaceChildren();
      this.speed.textContent = '';
      this.liveRate.value = String(this.job.config.learningRate);
      this.liveRateStatus.textContent = '';
    }
    this.send({ type: 'train', job: this.job, threads, resume, watch: this.watching() });
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

  /** A finished run: kept in the browser (its files, as fmnist train's folder holds them), its figures shown, its model added. */
  private async keep(files: Map<string, Uint8Array>): Promise<void> {
    const title = this.title;
    const run = runFromFiles('', title, files);
    if (run !== null) void renderRun(byId('results'), run, this.state.test);
    try {
      // A stopped run's partial model gives way to the finished one.
      await this.state.removeModel(`page:${title}`);
      const model = await this.library.keep(title, files);
      byId('downloads').replaceChildren(
        `${title} is ${this.library.keeps ? 'kept in this browser' : 'loaded (this browser keeps no models: its storage is refused)'}: Try, Inside and Look have it, and `,
        element('a', { href: '#models', 'data-tab': 'models', text: 'Models' }),
        ` offers its files and ONNX.`,
      );
      byId('results-card').dataset.model = model.id;
    } catch (error) {
      byId('downloads').textContent = `The model could not be kept: ${error instanceof Error ? error.message : String(error)}`;
    }
    byId('results-card').hidden = false;
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
        const markers = learningRateMarkers(message.history);
        this.loss.reset(job.config.epochs, TrainTab.epochPoints(message.history, 'loss'), markers);
        this.accuracy.reset(job.config.epochs, TrainTab.epochPoints(message.history, 'accuracy'), markers);
        this.progress.value = message.epochsDone / job.config.epochs;
        const last = markers.at(-1);
        if (last) this.liveRate.value = last.label.replace(/^lr /, '');
        this.state.setLive({ title: this.title, architecture: message.architecture, values: null, epoch: message.epochsDone, step: 0, training: true });
        break;
      }
      case 'learning-rate': {
        const { change } = message;
        const marker = { epoch: change.at, label: `lr ${change.peakLearningRate}` };
        this.loss.mark([marker]);
        this.accuracy.mark([marker]);
        this.liveRateStatus.textContent = `Learning rate ${change.peakLearningRate} from epoch ${change.epoch}, batch ${change.batch} on (marked on the curves).`;
        break;
      }
      case 'weights': {
        const live = this.state.live;
        if (live !== null) this.state.setLive({ ...live, values: message.values, epoch: message.epoch, step: message.step });
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
        if (this.state.live) this.state.setLive({ ...this.state.live, training: false });
        if (message.files) {
          // The best finished epoch so far, for this visit: the finished run is the one kept.
          void this.library.addUnkept(`page:${this.title}`, `${this.title} (stopped, epoch ${message.bestEpoch})`, message.files);
        }
        break;
      }
      case 'done': {
        this.finished();
        if (this.state.live) this.state.setLive({ ...this.state.live, training: false });
        this.progress.value = 1;
        this.progressText.textContent = `Done in ${clock(message.seconds)}: test accuracy ${percent(message.test.accuracy)} with the weights of epoch ${message.bestEpoch}${message.stoppedEarly ? ' (stopped early)' : ''}.`;
        void this.keep(message.files);
        break;
      }
      case 'error':
        this.finished();
        if (this.state.live) this.state.setLive({ ...this.state.live, training: false });
        this.progressText.textContent = `Training stopped with an error: ${message.message}`;
        break;
    }
  }
}
