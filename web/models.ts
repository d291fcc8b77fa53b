/**
 * The Models tab: every model of the page (the server's, those trained here and those dropped
 * here, the last two kept in the browser), each with its files and its ONNX to download, the
 * `fmnist predict` command and the ONNX Runtime Web lines that use them; and a model folder
 * dropped anywhere on the page, or picked, joins them.
 */
import { RUN_FILES } from '../src/runs/run-files.ts';
import { byId, element } from './dom.ts';
import type { PageModel } from './engine.ts';
import { downloadableFiles, onnxOf, onnxRuntimeSnippet, predictCommand, slug } from './export.ts';
import type { DroppedFiles, ModelLibrary } from './library.ts';
import type { AppState } from './state.ts';

const SOURCES = { kept: 'kept in this browser', server: 'from the server\'s run folder', page: 'this visit only (a stopped run)' } as const;

/** Saves bytes as a file, as a download link would. */
function save(name: string, bytes: Uint8Array, type = 'application/octet-stream'): void {
  const url = URL.createObjectURL(new Blob([bytes as Uint8Array<ArrayBuffer>], { type }));
  const link = element('a', { href: url, download: name });
  document.body.append(link);
  link.click();
  link.remove();
  // The download has its own copy once it starts.
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

/** Each file of a dropped folder (a directory entry, read recursively) with its path below what was dropped. */
async function entryFiles(entry: FileSystemEntry, files: DroppedFiles, path = entry.name): Promise<void> {
  if (entry.isFile) {
    const file = await new Promise<File>((resolve, reject) => (entry as FileSystemFileEntry).file(resolve, reject));
    files.set(path, new Uint8Array(await file.arrayBuffer()));
    return;
  }
  const reader = (entry as FileSystemDirectoryEntry).createReader();
  // readEntries gives the entries in batches until it gives none.
  for (;;) {
    const batch = await new Promise<FileSystemEntry[]>((resolve, reject) => reader.readEntries(resolve, reject));
    if (batch.length === 0) return;
    for (const child of batch) await entryFiles(child, files, `${path}/${child.name}`);
  }
}

/** The files of a drop: folders read through their entries (their paths kept), loose files by name. */
async function droppedFiles(transfer: DataTransfer): Promise<{ files: DroppedFiles; name: string }> {
  const files: DroppedFiles = new Map();
  // Entries must be taken before the first await: the drop's data is gone after the event.
  const entries = [...transfer.items].map((item) => item.webkitGetAsEntry?.() ?? null);
  const loose = [...transfer.files];
  if (entries.length > 0 && entries.every((entry) => entry !== null)) {
    // One folder: paths below it (mlp/model.json for a pipeline, model.json for a model's folder), named by it.
    const single = entries.length === 1 && entries[0]!.isDirectory ? entries[0]! : null;
    for (const entry of entries) await entryFiles(entry!, files, single ? '' : entry!.name);
    return { files: new Map([...files].map(([path, bytes]) => [path.replace(/^\//, ''), bytes])), name: single?.name ?? 'dropped model' };
  }
  for (const file of loose) files.set(file.name, new Uint8Array(await file.arrayBuffer()));
  return { files, name: 'dropped model' };
}

export class ModelsTab {
  private readonly list = byId('models-list');
  private readonly status = byId('drop-status');

  constructor(
    private readonly state: AppState,
    private readonly library: ModelLibrary,
  ) {
    state.onChange(() => this.refresh());
    byId<HTMLInputElement>('model-files').addEventListener('change', (event) => {
      const input = event.target as HTMLInputElement;
      void this.pick(input.files);
      input.value = '';
    });
    // A model folder dropped anywhere on the page.
    document.addEventListener('dragover', (event) => {
      if (!event.dataTransfer?.types.includes('Files')) return;
      event.preventDefault();
      event.dataTransfer.dropEffect = 'copy';
      document.body.classList.add('dragging');
    });
    document.addEventListener('dragleave', (event) => {
      if (event.relatedTarget === null) document.body.classList.remove('dragging');
    });
    document.addEventListener('drop', (event) => {
      if (!event.dataTransfer?.types.includes('Files')) return;
      event.preventDefault();
      document.body.classList.remove('dragging');
      const transfer = event.dataTransfer;
      void droppedFiles(transfer).then(({ files, name }) => this.bring(files, name));
    });
    this.refresh();
  }

  private async pick(list: FileList | null): Promise<void> {
    const files: DroppedFiles = new Map();
    for (const file of list ?? []) files.set(file.webkitRelativePath || file.name, new Uint8Array(await file.arrayBuffer()));
    await this.bring(files, 'picked model');
  }

  /** Adds the model folders among the files, and says what came of it. */
  async bring(files: DroppedFiles, name: string): Promise<void> {
    this.status.classList.remove('error');
    this.status.textContent = `Reading ${files.size} file${files.size === 1 ? '' : 's'}…`;
    const { added, problems } = await this.library.addDropped(files, name);
    const said = added.length > 0 ? `Added ${added.map((model) => model.label).join(', ')}; Try, Inside and Look have ${added.length === 1 ? 'it' : 'them'} now${this.library.keeps ? ', and this browser keeps it until you forget it' : ''}.` : '';
    this.status.textContent = [said, ...problems].filter(Boolean).join(' ');
    this.status.classList.toggle('error', added.length === 0);
  }

  private refresh(): void {
    if (this.state.models.length === 0) {
      this.list.replaceChildren(element('p', { class: 'note', text: 'No model yet: train one, drop a folder here, or start the app with --model DIR.' }));
      return;
    }
    this.list.replaceChildren(...this.state.models.map((model) => this.card(model)));
  }

  /** One model: what it is, its downloads, and how to use them. */
  private card(model: PageModel): HTMLElement {
    const folder = slug(model.label);
    const files = downloadableFiles(model).map(([name, bytes]) => {
      const button = element('button', { type: 'button', 'data-file': name, text: name });
      button.addEventListener('click', () => save(name, bytes, name.endsWith('.json') ? 'application/json' : 'application/octet-stream'));
      return button;
    });
    const onnx = element('button', { type: 'button', 'data-file': 'onnx', text: `${folder}.onnx` });
    onnx.addEventListener('click', () => {
      try {
        save(`${folder}.onnx`, onnxOf(model).bytes);
      } catch (error) {
        onnx.after(element('span', { class: 'error', text: ` ${error instanceof Error ? error.message : String(error)}` }));
      }
    });
    const actions = element('div', { class: 'buttons' }, ...files, onnx);
    if (model.source === 'kept') {
      const forget = element('button', { type: 'button', class: 'forget', text: 'Forget' });
      forget.addEventListener('click', () => void this.library.forget(model.id));
      actions.append(forget);
    }
    const parts: HTMLElement[] = [
      element('h3', { text: model.label }),
      element('p', { class: 'note', text: `${model.kind}, ${SOURCES[model.source]}; runs on ${model.runtime}.` }),
      actions,
    ];
    if (model.extractor !== null && model.description.input.type === 'cnn-features') {
      const cnn = model.description.input.extractor;
      const extractorFiles = [RUN_FILES.model, RUN_FILES.weights].map((name) => {
        const button = element('button', { type: 'button', text: `CNN's ${name}` });
        button.addEventListener('click', () => save(name, model.extractor!.get(name)!));
        return button;
      });
      parts.push(element('p', { class: 'note', text: `It takes the features of the CNN its model.json names (${cnn}): save that CNN's two files there, beside its folder.` }), element('div', { class: 'buttons' }, ...extractorFiles));
    }
    parts.push(
      element(
        'details',
        { class: 'use' },
        element('summary', { text: 'How to use the files' }),
        element('p', { class: 'note', text: `Saved into a folder ${folder}/, the files classify pictures on the command line:` }),
        element('pre', { class: 'cli' }, element('code', { class: 'predict-command', text: predictCommand(model) })),
        element('p', { class: 'note', text: `and the ONNX file in a web page with ONNX Runtime Web:` }),
        element('pre', { class: 'cli' }, element('code', { class: 'onnx-snippet', text: onnxRuntimeSnippet(model) })),
      ),
    );
    return element('section', { class: 'model-card', 'data-model': model.id }, ...parts);
  }
}
