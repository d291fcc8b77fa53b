import { UsageError } from '../errors.ts';
import { jsKernels } from './js.ts';
import type { BackendName, Kernels } from './types.ts';

export type { AdamHyper, BackendName, Kernels, SgdHyper } from './types.ts';

const BACKENDS: Record<BackendName, () => Kernels> = {
  js: () => jsKernels,
};

export const BACKEND_NAMES = Object.keys(BACKENDS) as BackendName[];

/** The kernels of a backend by name; `auto` picks the fastest one available. */
export function getKernels(name: BackendName | 'auto' = 'auto'): Kernels {
  if (name === 'auto') return jsKernels;
  const make = BACKENDS[name];
  if (!make) throw new UsageError(`Unknown backend "${name}"; choose one of: ${BACKEND_NAMES.join(', ')}, auto.`);
  return make();
}
