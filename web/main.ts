/**
 * The web app: Train (in a worker, on WebGPU where the browser gives an adapter, else on the
 * WebAssembly kernels; a switch chooses), Try (drawings, photos and test
 * images through every loaded model) and Look (a run's figures). Served by `fmnist app`, it
 * fetches the data and the run folder's models from the server; from a plain static host it
 * asks for the four data files and trains on one thread.
 */
import type { AppInfo, ServedModel } from '../src/app/api.ts';
import type { TestMetrics } from '../src/evaluation/metrics.ts';
import { decodeNpy } from '../src/io/npy-format.ts';
import { browserThreads } from '../src/kernels/wasm/browser.ts';
import { adapterName } from '../src/kernels/webgpu/backend.ts';
import { browserAdapter } from '../src/kernels/webgpu/browser.ts';
import type { EpochRecord } from '../src/training/fit.ts';
import { byId, percent } from './dom.ts';
import { servedModel } from './engine.ts';
import { LookTab } from './look.ts';
import type { FromWorker } from './protocol.ts';
import { AppState, type RunView } from './state.ts';
import { TrainTab } from './train.ts';
import { TryTab } from './try.ts';

const TABS = ['train', 'try', 'look'] as const;

/** Tabs as the ARIA pattern has them: one panel shown, arrow keys move between tabs. */
function setUpTabs(onShow: (tab: (typeof TABS)[number]) => void): void {
  const buttons = TABS.map((tab) => byId<HTMLButtonElement>(`tab-${tab}`));
  const show = (index: number) => {
    TABS.forEach((tab, i) => {
      buttons[i].setAttribute('aria-selected', String(i === index));
      buttons[i].tabIndex = i === index ? 0 : -1;
      byId(`panel-${tab}`).hidden = i !== index;
    });
    onShow(TABS[index]);
  };
  buttons.forEach((button, i) => {
    button.addEventListener('click', () => show(i));
    button.addEventListener('keydown', (event) => {
      const step = event.key === 'ArrowRight' ? 1 : event.key === 'ArrowLeft' ? -1 : 0;
      if (step === 0) return;
      const next = (i + step + TABS.length) % TABS.length;
      buttons[next].focus();
      show(next);
    });
  });
}

/** What `fmnist app` says about itself; null on a static host (the page has no fmnist-app marker there). */
async function appInfo(): Promise<AppInfo | null> {
  const marker = document.querySelector<HTMLMetaElement>('meta[name="fmnist-app"]');
  if (marker === null) return null;
  const response = await fetch(marker.content);
  if (!response.ok) throw new Error(`the server answered ${response.status} for ${marker.content}`);
  return (await response.json()) as AppInfo;
}

function describeThreads(threads: { isolated: boolean; cores: number; max: number }, info: AppInfo | null): string {
  const where = info === null ? 'Static mode (not served by fmnist app): pick the data files below. ' : '';
  return threads.isolated
    ? `${where}Cross-origin isolated: training runs on up to ${threads.max} thread${threads.max === 1 ? '' : 's'} (this device reports ${threads.cores} cores).`
    : `${where}Not cross-origin isolated (the server sends no COOP/COEP headers), so the WebAssembly memory cannot be shared with workers: training runs on one thread.`;
}

/** A served model's run (history.json, metrics.json, test_probabilities.npy) for Look, where the folder has them. */
async function servedRun(served: ServedModel): Promise<RunView | null> {
  if (!served.files.includes('history.json') || !served.files.includes('metrics.json')) return null;
  const base = new URL(served.path, location.href);
  const json = async <T>(file: string) => (await (await fetch(new URL(file, base))).json()) as T;
  const history = await json<EpochRecord[]>('history.json');
  const metrics = await json<{ test: TestMetrics; validation: { accuracy: number }; bestEpoch: number; epochsRun: number; stoppedEarly: boolean; trainingSeconds: number; parameterCount: number; backend: string }>('metrics.json');
  let probabilities: Float32Array | null = null;
  if (served.files.includes('test_probabilities.npy')) {
    const url = new URL('test_probabilities.npy', base);
    const array = decodeNpy(new Uint8Array(await (await fetch(url)).arrayBuffer()), url.pathname);
    probabilities = array.dtype === 'float32' ? array.data : null;
  }
  return {
    id: `server:${served.name}`,
    title: `${served.name} (server)`,
    history,
    bestEpoch: metrics.bestEpoch,
    test: metrics.test,
    probabilities,
    facts: [
      ['test accuracy', percent(metrics.test.accuracy)],
      ['validation accuracy', `${percent(metrics.validation.accuracy)} (epoch ${metrics.bestEpoch})`],
      ['epochs run', `${metrics.epochsRun}${metrics.stoppedEarly ? ' (stopped early)' : ''}`],
      ['training time', `${metrics.trainingSeconds.toFixed(1)} s`],
      ['parameters', metrics.parameterCount.toLocaleString('en-US')],
      ['backend', metrics.backend],
    ],
  };
}

async function start(): Promise<void> {
  const status = byId('status');
  const threads = browserThreads();
  let info: AppInfo | null = null;
  try {
    info = await appInfo();
  } catch (error) {
    status.textContent = `The server's description could not be read (${error instanceof Error ? error.message : String(error)}); working as on a static host.`;
  }
  const adapter = await browserAdapter();
  status.textContent = `${describeThreads(threads, info)} ${adapter === null ? 'No WebGPU here: models train and run on WebAssembly.' : `WebGPU: ${adapterName(adapter)}; the Engine switch chooses between it and WebAssembly.`}`;
  status.classList.toggle('single', !threads.isolated);
  document.documentElement.dataset.threads = String(threads.max);

  const state = new AppState();
  const worker = new Worker(new URL('./worker.ts', import.meta.url), { type: 'module', name: 'fmnist training' });
  const train = new TrainTab(worker, state, threads, info);
  if (adapter !== null) train.offerWebGpu(adapterName(adapter));
  new TryTab(state);
  const look = new LookTab(state);
  setUpTabs((tab) => {
    if (tab === 'look') void look.show();
  });
  worker.onmessage = (event: MessageEvent<FromWorker>) => train.handle(event.data);
  worker.onerror = (event) => {
    status.textContent = `The training worker failed: ${event.message}`;
  };
  train.loadServerData();

  for (const served of info?.models ?? []) {
    try {
      state.addModel(await servedModel(served, new URL(location.href), state.engine));
      const run = await servedRun(served);
      if (run !== null) state.addRun(run);
    } catch (error) {
      byId('models-status').textContent = `The server's model ${served.name} could not be loaded: ${error instanceof Error ? error.message : String(error)}`;
    }
  }
  document.documentElement.dataset.ready = 'true';
}

void start();
