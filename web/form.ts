/**
 * The training form, built from the CLI's option table (src/runs/options.ts): one field per
 * option of the chosen model, with the option's help as its label, its flag beside it, its
 * value type's bounds on the field, its checks (the type's own parse) and the command the form
 * shows (the table's flags). The page declares only which fields come first and its own
 * defaults (fewer epochs, so that a first run takes a minute or two).
 */
import { DEFAULT_CNN_CONFIG, DEFAULT_MLP_CONFIG, type CnnConfig, type MlpConfig } from '../src/runs/configs.ts';
import { CNN_CONFIG_OPTIONS, commandFlags, flagName, MLP_CONFIG_OPTIONS, type OptionSpec, type OptionTable } from '../src/runs/options.ts';
import { element } from './dom.ts';
import type { PageEngine, PageJob } from './protocol.ts';

type Kind = PageJob['kind'];
type AnyConfig = MlpConfig | CnnConfig;

const TABLES: { mlp: OptionTable<MlpConfig>; cnn: OptionTable<CnnConfig> } = { mlp: MLP_CONFIG_OPTIONS, cnn: CNN_CONFIG_OPTIONS };
/** `fmnist train`'s defaults, against which the command's flags are written. */
const CLI_DEFAULTS: { mlp: Readonly<MlpConfig>; cnn: Readonly<CnnConfig> } = { mlp: DEFAULT_MLP_CONFIG, cnn: DEFAULT_CNN_CONFIG };

/** The form starts from `fmnist train`'s defaults, with fewer epochs (and images for the CNN) so that a first run takes a minute or two. */
export const PAGE_DEFAULTS: { mlp: MlpConfig; cnn: CnnConfig } = {
  mlp: { ...DEFAULT_MLP_CONFIG, epochs: 10 },
  cnn: { ...DEFAULT_CNN_CONFIG, epochs: 3, trainLimit: 6000 },
};

/** The settings shown first; every other option of the table is under "All settings". */
const FIRST: { mlp: readonly string[]; cnn: readonly string[] } = {
  mlp: ['learningRate', 'epochs', 'batchSize', 'trainLimit', 'validationFraction', 'seed', 'hidden', 'dropout'],
  cnn: ['learningRate', 'epochs', 'batchSize', 'trainLimit', 'validationFraction', 'seed', 'channels', 'features', 'convDropout', 'featureDropout', 'augmentShift'],
};
/** Options the page sets itself: the engine switch is the backend, the thread list the threads. */
const PAGE_SET = new Set(['backend', 'threads']);

/** A field's id: the option's field name in kebab case (`learningRate` -> `learning-rate`). */
export const fieldId = (key: string) => key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
const sentence = (help: string) => help.charAt(0).toUpperCase() + help.slice(1);

/** `fmnist train` with the flags that give the same run: those that differ from its defaults, the seed, the backend and the threads. */
export function trainCommand(job: PageJob): string {
  const config = { ...job.config, threads: job.config.backend === 'webgpu' ? null : job.config.threads };
  const flags =
    job.kind === 'mlp'
      ? commandFlags(MLP_CONFIG_OPTIONS, config as MlpConfig, CLI_DEFAULTS.mlp, ['seed'])
      : commandFlags(CNN_CONFIG_OPTIONS, config as CnnConfig, CLI_DEFAULTS.cnn, ['seed']);
  return `fmnist train ${job.kind} ${flags.join(' ')}`;
}

/** The control of one option: a select for a list of choices, a checkbox for a switch, else a text or number field with the type's bounds. */
function control(key: string, spec: OptionSpec<unknown>, value: unknown): HTMLInputElement | HTMLSelectElement {
  const id = fieldId(key);
  const { type } = spec;
  if (type.choices) {
    const select = element('select', { id, name: key }, ...type.choices.map((choice) => element('option', { value: choice, text: choice })));
    select.value = String(value);
    return select;
  }
  if (typeof value === 'boolean') {
    const box = element('input', { id, name: key, type: 'checkbox' });
    box.checked = value;
    return box;
  }
  const range = type.range;
  const attributes: Record<string, string> = { id, name: key, type: range ? 'number' : 'text', spellcheck: 'false' };
  if (range) {
    attributes.step = range.integer ? '1' : 'any';
    if (range.min !== undefined) attributes.min = String(range.min);
    if (range.max !== undefined) attributes.max = String(range.max);
  } else attributes.inputmode = 'numeric';
  if (type.nullable) attributes.placeholder = 'none';
  const input = element('input', attributes);
  input.value = value === null || value === undefined ? '' : type.format ? type.format(value) : String(value);
  return input;
}

/** A field that does not hold a valid value, and why, in one sentence. */
export interface FieldProblem {
  key: string;
  message: string;
}

export class TrainingForm {
  private kind: Kind = 'mlp';

  constructor(
    private readonly first: HTMLElement,
    private readonly rest: HTMLElement,
  ) {}

  private table(): OptionTable<AnyConfig> {
    return TABLES[this.kind] as OptionTable<AnyConfig>;
  }

  /** Builds the fields of `kind`'s options, filled with the page's defaults for it. */
  show(kind: Kind): void {
    this.kind = kind;
    const table = this.table();
    const defaults = PAGE_DEFAULTS[kind] as unknown as Record<string, unknown>;
    const field = (key: string) => {
      const spec = table[key as keyof AnyConfig] as OptionSpec<unknown>;
      const input = control(key, spec, defaults[key]);
      const label = element('label', { for: input.id }, sentence(spec.help), ' ', element('code', { text: flagName(spec) }));
      const box = element('div', { class: typeof defaults[key] === 'boolean' ? 'field switch' : 'field' });
      if (input instanceof HTMLInputElement && input.type === 'checkbox') box.append(input, label);
      else box.append(label, input);
      return box;
    };
    const keys = Object.keys(table).filter((key) => !PAGE_SET.has(key));
    this.first.replaceChildren(...FIRST[kind].map(field));
    this.rest.replaceChildren(...keys.filter((key) => !FIRST[kind].includes(key)).map(field));
  }

  /** Sets fields by option name (the bench and tests use the ids, a person the fields). */
  private input(key: string): HTMLInputElement | HTMLSelectElement | null {
    return document.getElementById(fieldId(key)) as HTMLInputElement | HTMLSelectElement | null;
  }

  /**
   * The configuration the fields give (with `backend` and `threads` from the page), or the
   * first field whose text is not a value of its option's type, with the type's own words.
   */
  read(backend: PageEngine, threads: number): PageJob | FieldProblem {
    const table = this.table();
    const config: Record<string, unknown> = { ...PAGE_DEFAULTS[this.kind], backend, threads };
    let problem: FieldProblem | null = null;
    for (const key of Object.keys(table)) {
      if (PAGE_SET.has(key)) continue;
      const input = this.input(key);
      if (input === null) continue;
      const spec = table[key as keyof AnyConfig] as OptionSpec<unknown>;
      let value: unknown;
      if (input instanceof HTMLInputElement && input.type === 'checkbox') value = input.checked;
      else if (spec.type.nullable && input.value.trim() === '') value = null;
      else value = spec.type.parse(input.value);
      const valid = value !== undefined && spec.type.check(value);
      input.setAttribute('aria-invalid', String(!valid));
      if (valid) config[key] = value;
      else problem ??= { key, message: `Check "${sentence(spec.help)}" (${flagName(spec)}): give ${spec.type.describe}.` };
    }
    if (problem) return problem;
    return { kind: this.kind, config } as unknown as PageJob;
  }
}
