/**
 * The training worker: holds the data and the kernels (WebGPU, or WebAssembly with its own
 * workers, one per extra thread) and trains through the same job as `fmnist train`
 * (src/runs/job-core.ts: startJob, trainJob, finishJob), posting its progress, and now and then
 * the weights, to the page. Off the page's thread, so drawing stays smooth.
 */
import { loadGivenData, pageData, type GivenFile } from '../src/data/browser.ts';
import type { DataFileKey } from '../src/data/manifest.ts';
import type { LoadedData } from '../src/data/split.ts';
import type { Kernels } from '../src/kernels/types.ts';
import { loadBrowserWasmKernels } from '../src/kernels/wasm/browser.ts';
import { loadBrowserWebGpuKernels } from '../src/kernels/webgpu/browser.ts';
import { Sequential } from '../src/models/sequential.ts';
import { finishedJobFiles, finishJob, imageJobData, jobConfigFile, jobModelFiles, startJob, trainJob, type JobSpec, type StartedJob } from '../src/runs/job-core.ts';
import { jsonFileText, RUN_FILES } from '../src/runs/run-files.ts';
import type { ProgressEvent, TrainingControl } from '../src/training/fit.ts';
import { MemoryCheckpointer } from './checkpoint.ts';
import type { DataSource, FromWorker, PageEngine, PageJob, RunFileMap, ToWorker } from './protocol.ts';
import { VERSION } from './version.ts';
import { WASM_URLS } from './wasm.ts';

const scope = self as unknown as {
  postMessage(message: FromWorker, transfer?: Transferable[]): void;
  onmessage: ((event: MessageEvent<ToWorker>) => void) | null;
};
const post = (message: FromWorker, transfer: Transferable[] = []) => scope.postMessage(message, transfer);
const reason = (error: unknown) => (error instanceof Error ? error.message : String(error));

/**
 * Progress is posted at most this often (and at each epoch's last batch): four times a second
 * keeps the curves live, and each post makes the page redraw them on a core that training on
 * every thread would rather have.
 */
const PROGRESS_MILLISECONDS = 250;
/** The speed is timed from this batch of an epoch on: the first ones warm up (as bench/run.ts times it). */
const WARM_BATCHES = 3;
/**
 * The weights are sent every SNAPSHOT_STEPS steps, but at most once a second (the MLP takes
 * hundreds of steps a second) and at least every 5 seconds (the CNN takes a few), and at each
 * epoch's end. Each costs the training one copy of the weights; the page redraws from it.
 */
const SNAPSHOT_STEPS = 200;
const SNAPSHOT_MIN_MILLISECONDS = 1000;
const SNAPSHOT_MAX_MILLISECONDS = 5000;

let data: LoadedData | null = null;
/** The kernels of the last run, kept for the next (a new engine or thread count replaces them). */
let kernels: { engine: PageEngine; threads: number; kernels: Kernels & { close(): void } } | null = null;
let checkpointer = new MemoryCheckpointer();
let controller: AbortController | null = null;
/** The learning rate the page asked for while training; kept for a resumed run. */
let control: TrainingControl = {};
let watching = true;

/** The four files' bytes, from the server or from the files a person picked. */
async function givenFiles(source: DataSource): Promise<Record<DataFileKey, GivenFile>> {
  const keys = Object.keys(source.files) as DataFileKey[];
  const read = async (key: DataFileKey): Promise<GivenFile> => {
    if (source.type === 'files') {
      const file = source.files[key];
      return { file: file.name, bytes: new Uint8Array(await file.arrayBuffer()) };
    }
    const { name, url } = source.files[key];
    const response = await fetch(url);
    if (!response.ok) throw new Error(`the server answered ${response.status} for ${name}`);
    return { file: name, bytes: new Uint8Array(await response.arrayBuffer()) };
  };
  const files = await Promise.all(keys.map(read));
  return Object.fromEntries(keys.map((key, i) => [key, files[i]])) as Record<DataFileKey, GivenFile>;
}

async function loadData(source: DataSource, allowModified: boolean): Promise<void> {
  try {
    const loaded = await loadGivenData(await givenFiles(source), { allowModified });
    data = pageData(loaded, source.type === 'server' ? 'files served by fmnist app' : 'files picked in the page');
    const test = loaded.test.data;
    const copy = { count: test.count, pixels: test.pixels.slice(), labels: test.labels.slice() };
    post({ type: 'data', checks: [...loaded.training.checks, ...loaded.test.checks], trainingCount: loaded.training.data.count, test: copy }, [copy.pixels.buffer, copy.labels.buffer]);
  } catch (error) {
    post({ type: 'data-error', message: reason(error) });
  }
}

async function kernelsFor(engine: PageEngine, threads: number): Promise<Kernels> {
  if (kernels?.engine === engine && (engine === 'webgpu' || kernels.threads === threads)) return kernels.kernels;
  kernels?.kernels.close();
  kernels = null;
  const loaded = engine === 'webgpu' ? await loadBrowserWebGpuKernels() : await loadBrowserWasmKernels({ urls: WASM_URLS, threads });
  kernels = { engine, threads, kernels: loaded };
  return loaded;
}

/** Turns fit's events into the page's progress messages, with the speed and the time left, and sends the weights now and then. */
function progressReporter(batchSize: number, epochs: number, model: () => Sequential | null): (event: ProgressEvent) => void {
  // The first progress event at or after WARM_BATCHES: its time and batch (on WebGPU, fit reports every 250 ms, not every batch).
  let warm: { at: number; batch: number } | null = null;
  let imagesPerSecond: number | null = null;
  let lastPost = 0;
  let step = 0;
  let snapshot = { step: 0, at: performance.now() };
  const sendWeights = (epoch: number) => {
    const watched = model();
    if (!watching || watched === null) return;
    snapshot = { step, at: performance.now() };
    void watched.readValues().then((values) => post({ type: 'weights', epoch, step, values }, [values.buffer]));
  };
  return (event) => {
    if (event.type === 'epoch-start') {
      warm = null;
      imagesPerSecond = null;
      step = (event.epoch - 1) * event.batches;
      return;
    }
    if (event.type === 'epoch-end') {
      post({ type: 'epoch', record: event.record, improved: event.improved, imagesPerSecond });
      sendWeights(event.record.epoch);
      return;
    }
    const now = performance.now();
    step = (event.epoch - 1) * event.batches + event.batch;
    const since = now - snapshot.at;
    if (since >= SNAPSHOT_MIN_MILLISECONDS && (step - snapshot.step >= SNAPSHOT_STEPS || since >= SNAPSHOT_MAX_MILLISECONDS)) sendWeights(event.epoch);
    if (warm === null && event.batch >= WARM_BATCHES) warm = { at: now, batch: event.batch };
    else if (warm !== null && event.batch > warm.batch) imagesPerSecond = ((event.batch - warm.batch) * batchSize) / ((now - warm.at) / 1000);
    if (now - lastPost < PROGRESS_MILLISECONDS && event.batch !== event.batches) return;
    lastPost = now;
    // Validation is left out of the time left: it takes a small share of an epoch.
    const imagesLeft = (event.batches - event.batch + (epochs - event.epoch) * event.batches) * batchSize;
    post({
      type: 'progress',
      epoch: event.epoch,
      epochs,
      batch: event.batch,
      batches: event.batches,
      loss: event.loss,
      accuracy: event.accuracy,
      imagesPerSecond,
      etaSeconds: imagesPerSecond === null ? null : imagesLeft / imagesPerSecond,
    });
  };
}

/** The browser that ran the job, for config.json (where the CLI writes Node's version). */
const software = () => ({ browser: navigator.userAgent });

async function train(pageJob: PageJob, threads: number, resume: boolean): Promise<void> {
  if (data === null) {
    post({ type: 'error', message: 'The data is not loaded yet; load the four files first.' });
    return;
  }
  if (!resume) {
    checkpointer = new MemoryCheckpointer();
    control = {};
  }
  const started = performance.now();
  let job: StartedJob | null = null;
  let model: Sequential | null = null;
  controller = new AbortController();
  try {
    const k = await kernelsFor(pageJob.config.backend, threads);
    // The start of every job, as fmnist train starts it: streams from the seed, the split, the recipe.
    const loaded = data;
    const spec = pageJob as JobSpec;
    job = startJob(spec, (streams) => imageJobData(spec.config, streams, { loaded }));
    const { data: jobData, plan } = job;
    if (jobData.type !== 'images') throw new Error('the page trains on images');
    const saved = checkpointer.latest;
    post({
      type: 'started',
      kernels: k.description,
      trainCount: jobData.images.train.count,
      validationCount: jobData.images.validation.count,
      epochsDone: saved?.epochsDone ?? 0,
      history: saved?.history ?? [],
      architecture: plan.architecture,
    });
    control.onChange = (change) => post({ type: 'learning-rate', change });
    const report = progressReporter(pageJob.config.batchSize, pageJob.config.epochs, () => model);
    const trained = await trainJob(spec, plan, job.streams, {
      kernels: k,
      checkpoint: checkpointer,
      signal: controller.signal,
      onProgress: report,
      control,
      onModel: (built) => (model = built),
    });
    model = null;
    // The end of every job, as fmnist train ends it: the test evaluation (flipped where the model flips), the figures, the files.
    const finished = await finishJob(job, trained, k);
    const files = await finishedJobFiles(finished, trained.model);
    files.set(RUN_FILES.config, new TextEncoder().encode(jsonFileText(jobConfigFile(spec, jobData, VERSION, software()))));
    trained.model.dispose();
    post(
      {
        type: 'done',
        history: finished.history,
        bestEpoch: finished.metrics.bestEpoch,
        stoppedEarly: finished.metrics.stoppedEarly,
        parameterCount: finished.metrics.parameterCount,
        test: finished.test,
        probabilities: finished.probabilities,
        files,
        seconds: (performance.now() - started) / 1000,
      },
      [finished.probabilities.buffer],
    );
  } catch (error) {
    if (!controller.signal.aborted || job === null || kernels === null) {
      post({ type: 'error', message: reason(error) });
      return;
    }
    // Stopped between two batches: what remains is the last finished epoch's checkpoint.
    const state = checkpointer.latest;
    let files: RunFileMap | null = null;
    if (state !== null) {
      // The best finished epoch's model and the history so far: what a stopped fmnist train leaves (its checkpoint aside).
      const best = new Sequential(kernels.kernels, job.plan.architecture);
      best.writeValues(state.bestValues);
      const { description, weights } = await jobModelFiles(job, best);
      best.dispose();
      const text = (value: unknown) => new TextEncoder().encode(jsonFileText(value));
      files = new Map([
        [RUN_FILES.model, text(description)],
        [RUN_FILES.weights, weights],
        [RUN_FILES.history, text(state.history)],
      ]);
    }
    post({ type: 'stopped', epochsDone: state?.epochsDone ?? 0, files, history: state?.history ?? [], bestEpoch: state?.bestEpoch ?? 0 });
  } finally {
    controller = null;
  }
}

scope.onmessage = (event) => {
  const message = event.data;
  if (message.type === 'load-data') void loadData(message.source, message.allowModified);
  else if (message.type === 'train') {
    watching = message.watch;
    void train(message.job, message.threads, message.resume);
  } else if (message.type === 'stop') controller?.abort();
  else if (message.type === 'set-learning-rate') control.learningRate = message.learningRate;
  else if (message.type === 'watch') watching = message.watch;
};
