/**
 * The training worker: holds the data and the kernels (WebGPU, or WebAssembly with its own
 * workers, one per extra thread) and trains through the same job as `fmnist train`
 * (src/runs/job-core.ts), posting its progress to the page. Off the page's thread, so drawing
 * stays smooth.
 */
import { loadGivenData, pageData, type GivenFile } from '../src/data/browser.ts';
import { NUM_CLASSES } from '../src/data/idx.ts';
import { CLASS_NAMES, type DataFileKey } from '../src/data/manifest.ts';
import type { LoadedData } from '../src/data/split.ts';
import { testMetrics } from '../src/evaluation/metrics.ts';
import { evaluate } from '../src/evaluation/predict.ts';
import type { Kernels } from '../src/kernels/types.ts';
import { loadBrowserWasmKernels } from '../src/kernels/wasm/browser.ts';
import { loadBrowserWebGpuKernels } from '../src/kernels/webgpu/browser.ts';
import { SoftmaxCrossEntropy } from '../src/layers/softmax-cross-entropy.ts';
import { encodeModel } from '../src/models/model-format.ts';
import { Sequential } from '../src/models/sequential.ts';
import { forkStreams } from '../src/random/streams.ts';
import { imageJobData, recipe, trainJob, type JobSpec, type Recipe } from '../src/runs/job-core.ts';
import type { ProgressEvent } from '../src/training/fit.ts';
import { MemoryCheckpointer } from './checkpoint.ts';
import type { DataSource, FromWorker, ModelFiles, PageEngine, PageJob, ToWorker } from './protocol.ts';
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

let data: LoadedData | null = null;
/** The kernels of the last run, kept for the next (a new engine or thread count replaces them). */
let kernels: { engine: PageEngine; threads: number; kernels: Kernels & { close(): void } } | null = null;
let checkpointer = new MemoryCheckpointer();
let controller: AbortController | null = null;

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

/** The model files of `model` trained by `plan`, for the page (Try, and the download links). */
function modelFiles(job: PageJob, plan: Recipe, model: Sequential): Promise<ModelFiles> {
  return encodeModel(model, { kind: job.kind, input: plan.input, classNames: CLASS_NAMES, featureLayer: plan.featureLayer });
}

/** Turns fit's events into the page's progress messages, with the speed and the time left. */
function progressReporter(batchSize: number, epochs: number): (event: ProgressEvent) => void {
  // The first progress event at or after WARM_BATCHES: its time and batch (on WebGPU, fit reports every 250 ms, not every batch).
  let warm: { at: number; batch: number } | null = null;
  let imagesPerSecond: number | null = null;
  let lastPost = 0;
  return (event) => {
    if (event.type === 'epoch-start') {
      warm = null;
      imagesPerSecond = null;
      return;
    }
    if (event.type === 'epoch-end') {
      post({ type: 'epoch', record: event.record, improved: event.improved, imagesPerSecond });
      return;
    }
    const now = performance.now();
    if (warm === null && event.batch >= WARM_BATCHES) warm = { at: now, batch: event.batch };
    else if (warm !== null && event.batch > warm.batch) imagesPerSecond = ((event.batch - warm.batch) * batchSize) / ((now - warm.at) / 1000);
    if (now - lastPost < PROGRESS_MILLISECONDS && event.batch !== event.batches) return;
    lastPost = now;
    // Validation is left out of the time left: it takes a small share of an epoch.
    const imagesLeft = ((event.batches - event.batch) + (epochs - event.epoch) * event.batches) * batchSize;
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

async function train(job: PageJob, threads: number, resume: boolean): Promise<void> {
  if (data === null) {
    post({ type: 'error', message: 'The data is not loaded yet; load the four files first.' });
    return;
  }
  if (!resume) checkpointer = new MemoryCheckpointer();
  const started = performance.now();
  let plan: Recipe | null = null;
  controller = new AbortController();
  try {
    const k = await kernelsFor(job.config.backend, threads);
    // The same steps as fmnist train (src/runs/train.ts): streams from the seed, the split, the recipe, the job.
    const spec = job as JobSpec;
    const streams = forkStreams(job.config.seed);
    const jobData = imageJobData(job.config, streams, { loaded: data });
    if (jobData.type !== 'images') throw new Error('the page trains on images');
    plan = recipe(spec, jobData, streams);
    const saved = checkpointer.latest;
    post({
      type: 'started',
      kernels: k.description,
      trainCount: jobData.images.train.count,
      validationCount: jobData.images.validation.count,
      epochsDone: saved?.epochsDone ?? 0,
      history: saved?.history ?? [],
    });
    const report = progressReporter(job.config.batchSize, job.config.epochs);
    const { model, fit } = await trainJob(spec, plan, streams, {
      kernels: k,
      checkpoint: checkpointer,
      signal: controller.signal,
      onProgress: report,
    });
    const testExamples = plan.test();
    const testLoss = new SoftmaxCrossEntropy(k, NUM_CLASSES);
    const evaluation = await evaluate(k, model, testLoss, testExamples);
    testLoss.dispose();
    const test = testMetrics(testExamples.labels, evaluation.predictions, evaluation.accuracy, evaluation.loss);
    const files = await modelFiles(job, plan, model);
    model.dispose();
    post(
      {
        type: 'done',
        history: fit.history,
        bestEpoch: fit.bestEpoch,
        stoppedEarly: fit.stoppedEarly,
        parameterCount: model.parameterCount,
        test,
        probabilities: evaluation.probabilities,
        model: files,
        seconds: (performance.now() - started) / 1000,
      },
      [evaluation.probabilities.buffer, files.weights.buffer as ArrayBuffer],
    );
  } catch (error) {
    if (!controller.signal.aborted || plan === null || kernels === null) {
      post({ type: 'error', message: reason(error) });
      return;
    }
    // Stopped between two batches: what remains is the last finished epoch's checkpoint.
    const state = checkpointer.latest;
    let files: ModelFiles | null = null;
    if (state !== null) {
      const model = new Sequential(kernels.kernels, plan.architecture);
      model.writeValues(state.bestValues);
      files = await modelFiles(job, plan, model);
      model.dispose();
    }
    post({ type: 'stopped', epochsDone: state?.epochsDone ?? 0, model: files, history: state?.history ?? [], bestEpoch: state?.bestEpoch ?? 0 });
  } finally {
    controller = null;
  }
}

scope.onmessage = (event) => {
  const message = event.data;
  if (message.type === 'load-data') void loadData(message.source, message.allowModified);
  else if (message.type === 'train') void train(message.job, message.threads, message.resume);
  else if (message.type === 'stop') controller?.abort();
};
