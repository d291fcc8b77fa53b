import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { UserError } from '../errors.ts';
import { makeFolder, writeFileAtomic, writeJsonAtomic } from '../io/atomic.ts';
import { decodeSafetensors, encodeSafetensors, type NamedTensor } from '../io/safetensors.ts';
import type { Checkpointer, FitState } from './fit.ts';

/** The latest checkpoint's state, and the one before it. */
const LATEST = 'checkpoint.json';
const PREVIOUS = 'checkpoint.previous.json';

/** The state's scalars and history: everything but the tensors. */
interface StateJson {
  epochsDone: number;
  bestEpoch: number;
  bestAccuracy: number;
  optimizerSteps: number;
  optimizerBuffers: number;
  rngs: FitState['rngs'];
  history: FitState['history'];
  /** Steps seen by the moving average of the weights (its values are the tensor `average`), when there is one. */
  averageSteps?: number;
  /** Epochs averaged so far by a snapshot ensemble (their mean is the tensor `snapshots`), when there are any. */
  snapshotCount?: number;
}

function stateJson(state: FitState): StateJson {
  return {
    epochsDone: state.epochsDone,
    bestEpoch: state.bestEpoch,
    bestAccuracy: state.bestAccuracy,
    optimizerSteps: state.optimizer.steps,
    optimizerBuffers: state.optimizer.buffers.length,
    rngs: state.rngs,
    history: state.history,
    ...(state.average ? { averageSteps: state.average.steps } : {}),
    ...(state.snapshots ? { snapshotCount: state.snapshots.count } : {}),
  };
}

/** Weights, best weights, optimiser buffers, example order and the weights' moving average, as named tensors. */
function stateTensors(state: FitState): NamedTensor[] {
  return [
    { name: 'values', shape: [state.values.length], data: state.values },
    { name: 'bestValues', shape: [state.bestValues.length], data: state.bestValues },
    ...state.optimizer.buffers.map((data, i) => ({ name: `optimizer.${i}`, shape: [data.length], data })),
    { name: 'order', shape: [state.order.length], data: state.order },
    ...(state.average ? [{ name: 'average', shape: [state.average.values.length], data: state.average.values }] : []),
    ...(state.snapshots ? [{ name: 'snapshots', shape: [state.snapshots.values.length], data: state.snapshots.values }] : []),
  ];
}

function fitState(json: StateJson, tensors: Map<string, NamedTensor>, source: string): FitState {
  const get = (name: string) => {
    const tensor = tensors.get(name);
    if (!tensor) throw new Error(`${source} lacks tensor ${name}`);
    return tensor.data;
  };
  return {
    epochsDone: json.epochsDone,
    values: get('values') as Float32Array,
    bestValues: get('bestValues') as Float32Array,
    bestEpoch: json.bestEpoch,
    bestAccuracy: json.bestAccuracy,
    optimizer: {
      steps: json.optimizerSteps,
      buffers: Array.from({ length: json.optimizerBuffers }, (_, i) => get(`optimizer.${i}`) as Float32Array),
    },
    rngs: json.rngs,
    order: get('order') as Int32Array,
    history: json.history,
    ...(json.averageSteps === undefined ? {} : { average: { values: get('average') as Float32Array, steps: json.averageSteps } }),
    ...(json.snapshotCount === undefined ? {} : { snapshots: { values: get('snapshots') as Float32Array, count: json.snapshotCount } }),
  };
}

/**
 * A checkpoint as one safetensors file: the tensors, and the rest of the state as JSON in the
 * header's metadata (`fitState`). A search stores these bytes in its database, so that a worker
 * on another machine can continue the trial.
 */
export function encodeCheckpoint(state: FitState): Uint8Array {
  return encodeSafetensors(stateTensors(state), { format: 'fmnist-checkpoint', fitState: JSON.stringify(stateJson(state)) });
}

/** The state encoded by {@link encodeCheckpoint}; `source` names the bytes in errors. */
export function decodeCheckpoint(bytes: Uint8Array, source: string): FitState {
  const { tensors, metadata } = decodeSafetensors(bytes, source);
  if (metadata.format !== 'fmnist-checkpoint' || typeof metadata.fitState !== 'string') throw new Error(`${source} is not an fmnist checkpoint`);
  return fitState(JSON.parse(metadata.fitState) as StateJson, tensors, source);
}

/**
 * Checkpoints in one file (`encodeCheckpoint`), replaced atomically after every epoch;
 * `onSave` is told each time (a search worker then stores the file in its database).
 */
export function singleFileCheckpointer(path: string, onSave?: (epochsDone: number) => void): Checkpointer {
  return {
    load: () => (existsSync(path) ? decodeCheckpoint(readFileSync(path), path) : null),
    save(state: FitState): void {
      makeFolder(dirname(path));
      writeFileAtomic(path, encodeCheckpoint(state));
      onSave?.(state.epochsDone);
    },
  };
}

/** Reads one generation: its state file and the tensors it names, checked. Throws a sentence saying what is wrong. */
function readGeneration(dir: string, stateFile: string): FitState {
  const statePath = join(dir, stateFile);
  let state: StateJson & { tensors: string };
  try {
    state = JSON.parse(readFileSync(statePath, 'utf8')) as StateJson & { tensors: string };
  } catch (error) {
    throw new Error(`${statePath} is not readable JSON (${error instanceof Error ? error.message : String(error)})`, { cause: error });
  }
  if (typeof state?.tensors !== 'string' || !/^checkpoint-\d+\.safetensors$/.test(state.tensors) || !Number.isInteger(state.epochsDone) || !Array.isArray(state.history)) {
    throw new Error(`${statePath} does not describe a checkpoint`);
  }
  const tensorsPath = join(dir, state.tensors);
  let bytes: Buffer;
  try {
    bytes = readFileSync(tensorsPath);
  } catch (error) {
    throw new Error(`${tensorsPath} cannot be read (${(error as NodeJS.ErrnoException).code ?? String(error)})`, { cause: error });
  }
  return fitState(state, decodeSafetensors(bytes, tensorsPath).tensors, tensorsPath);
}

/**
 * Checkpoints in `dir`, two generations deep: the tensors (weights, best weights, optimiser
 * buffers, example order) in checkpoint-<epoch>.safetensors, then checkpoint.json naming that
 * file, the state it replaces kept as checkpoint.previous.json. Every file is written
 * atomically and the state last, so a run killed at any moment, or a write refused by a full
 * disk, leaves the last complete checkpoint in place. Loading falls back to the previous
 * generation when the latest is damaged (`onFallback` says so); when neither can be read it
 * throws a UserError that says how to start over.
 */
export function fileCheckpointer(dir: string, onFallback?: (message: string) => void): Checkpointer {
  return {
    load(): FitState | null {
      const generations = [LATEST, PREVIOUS].filter((file) => existsSync(join(dir, file)));
      if (generations.length === 0) return null;
      const problems: string[] = [];
      for (const file of generations) {
        try {
          const state = readGeneration(dir, file);
          if (problems.length > 0) onFallback?.(`${problems[0]}; continuing from the checkpoint before it (epoch ${state.epochsDone})`);
          return state;
        } catch (error) {
          problems.push(error instanceof Error ? error.message : String(error));
        }
      }
      throw new UserError(`The checkpoint in ${dir} is damaged (${problems.join('; ')}); delete that folder to train this run again from its first epoch with the same command (the same seed gives the same result).`);
    },

    save(state: FitState): void {
      makeFolder(dir);
      const tensors = `checkpoint-${state.epochsDone}.safetensors`;
      writeFileAtomic(join(dir, tensors), encodeSafetensors(stateTensors(state)));
      const latest = join(dir, LATEST);
      if (existsSync(latest)) writeFileAtomic(join(dir, PREVIOUS), readFileSync(latest));
      writeJsonAtomic(latest, { ...stateJson(state), tensors });
      // Keep the tensors of both generations; older ones (and those of a write that failed) go.
      const kept = new Set([tensors, previousTensors(dir)]);
      for (const file of readdirSync(dir)) {
        if (/^checkpoint-\d+\.safetensors$/.test(file) && !kept.has(file)) rmSync(join(dir, file), { force: true });
      }
    },
  };
}

/** The tensors file the previous generation names, if it can be read. */
function previousTensors(dir: string): string | null {
  try {
    return (JSON.parse(readFileSync(join(dir, PREVIOUS), 'utf8')) as { tensors: string }).tensors;
  } catch {
    return null;
  }
}
