/**
 * The web app: Train (in a worker, on WebGPU where the browser gives an adapter, else on the
 * WebAssembly kernels; a switch chooses), Try (drawings, photos, the camera and test images
 * through every loaded model), Inside (each layer's output, the filters and the weights, live
 * while training), Look (a run's figures) and Models (kept in the browser, dropped, downloaded
 * as files or ONNX). Served by `fmnist app`, it fetches the data and the run folder's models
 * from the server; from a plain static host it asks for the four data files and trains on one
 * thread.
 */
import type { AppInfo } from '../src/app/api.ts';
import { browserThreads } from '../src/kernels/wasm/browser.ts';
import { adapterName } from '../src/kernels/webgpu/backend.ts';
import { browserAdapter } from '../src/kernels/webgpu/browser.ts';
import { byId } from './dom.ts';
import { pageMemory } from './engine.ts';
import { InsideTab } from './inside.ts';
import { ModelLibrary } from './library.ts';
import { LookTab } from './look.ts';
import { ModelsTab } from './models.ts';
import type { FromWorker } from './protocol.ts';
import { AppState } from './state.ts';
import { ModelStore } from './store.ts';
import { TrainTab } from './train.ts';
import { TryTab } from './try.ts';

const TABS = ['train', 'try', 'inside', 'look', 'models'] as const;

/** Tabs as the ARIA pattern has them: one panel shown, arrow keys move between tabs. */
function setUpTabs(onShow: (tab: (typeof TABS)[number], shown: boolean) => void): void {
  const buttons = TABS.map((tab) => byId<HTMLButtonElement>(`tab-${tab}`));
  const show = (index: number) => {
    TABS.forEach((tab, i) => {
      buttons[i].setAttribute('aria-selected', String(i === index));
      buttons[i].tabIndex = i === index ? 0 : -1;
      byId(`panel-${tab}`).hidden = i !== index;
      onShow(tab, i === index);
    });
  };
  // A link to a tab (`<a data-tab="models">`) shows it.
  document.addEventListener('click', (event) => {
    const link = (event.target as HTMLElement).closest?.('a[data-tab]');
    const index = link ? TABS.indexOf(link.getAttribute('data-tab') as (typeof TABS)[number]) : -1;
    if (index < 0) return;
    event.preventDefault();
    show(index);
    buttons[index].focus();
  });
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
  const library = new ModelLibrary(state, await ModelStore.open());
  const worker = new Worker(new URL('./worker.ts', import.meta.url), { type: 'module', name: 'fmnist training' });
  let insideShown = false;
  const train = new TrainTab(worker, state, threads, info, library, () => insideShown);
  if (adapter !== null) train.offerWebGpu(adapterName(adapter));
  const tryTab = new TryTab(state);
  const inside = new InsideTab(state);
  const look = new LookTab(state);
  new ModelsTab(state, library);
  setUpTabs((tab, shown) => {
    if (tab === 'look' && shown) void look.show();
    if (tab === 'try' && shown) tryTab.shown();
    if (tab === 'inside' && shown !== insideShown) {
      insideShown = shown;
      inside.setVisible(shown);
      // The worker sends the weights as it trains only while they are drawn.
      train.watch(shown);
    }
  });
  worker.onmessage = (event: MessageEvent<FromWorker>) => train.handle(event.data);
  worker.onerror = (event) => {
    status.textContent = `The training worker failed: ${event.message}`;
  };
  train.loadServerData();

  const problem = (message: string) => {
    byId('models-status').textContent = message;
  };
  for (const served of info?.models ?? []) {
    try {
      await library.addServed(served, new URL(location.href));
    } catch (error) {
      problem(`The server's model ${served.name} could not be loaded: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
  await library.loadKept(problem);
  // For the tests and the benchmark: what the page holds in memory (its WebAssembly tensors) and its models, read-only.
  Object.assign(window, { fmnistPage: { memory: pageMemory, models: () => state.models } });
  document.documentElement.dataset.ready = 'true';
}

void start();
