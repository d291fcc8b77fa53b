import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Checkpointer, FitState } from './fit.ts';
import { writeFileAtomic, writeJsonAtomic } from '../io/atomic.ts';
import { decodeSafetensors, encodeSafetensors, type NamedTensor } from '../io/safetensors.ts';

const STATE_FILE = 'checkpoint.json';

/** The state's scalars and history: everything but the tensors. */
interface StateJson {
  epochsDone: number;
  bestEpoch: number;
  bestAccuracy: number;
  optimizerSteps: number;
  optimizerBuffers: number;
  rngs: FitState['rngs'];
  history: FitState['history'];
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
  };
}

/** Weights, best weights, optimiser buffers and example order, as named tensors. */
function stateTensors(state: FitState): NamedTensor[] {
  return [
    { name: 'values', shape: [state.values.length], data: state.values },
    { name: 'bestValues', shape: [state.bestValues.length], data: state.bestValues },
    ...state.optimizer.buffers.map((data, i) => ({ name: `optimizer.${i}`, shape: [data.length], data })),
    { name: 'order', shape: [state.order.length], data: state.order },
  ];
}

function fitState(json: StateJson, tensors: Map<string, NamedTensor>, source: string): FitState {
  const get = (name: string) => {
    const tensor = tensors.get(name);
    if (!tensor) throw new Error(`${source} lacks ${name}`);
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
      mkdirSync(dirname(path), { recursive: true });
      writeFileAtomic(path, encodeCheckpoint(state));
      onSave?.(state.epochsDone);
    },
  };
}

/**
 * Checkpoints in `dir`: the tensors (weights, best weights, optimiser buffers, example order) in
 * checkpoint-<epoch>.safetensors, then checkpoint.json naming that file. checkpoint.json is
 * written last and atomically, so a run killed at any moment leaves the previous complete
 * checkpoint in place; older tensor files are removed after.
 */
export function fileCheckpointer(dir: string): Checkpointer {
  return {
    load(): FitState | null {
      const statePath = join(dir, STATE_FILE);
      if (!existsSync(statePath)) return null;
      const state = JSON.parse(readFileSync(statePath, 'utf8')) as StateJson & { tensors: string };
      const tensorsPath = join(dir, state.tensors);
      return fitState(state, decodeSafetensors(readFileSync(tensorsPath), tensorsPath).tensors, tensorsPath);
    },

    save(state: FitState): void {
      mkdirSync(dir, { recursive: true });
      const tensors = `checkpoint-${state.epochsDone}.safetensors`;
      writeFileAtomic(join(dir, tensors), encodeSafetensors(stateTensors(state)));
      writeJsonAtomic(join(dir, STATE_FILE), { ...stateJson(state), tensors });
      for (const file of readdirSync(dir)) {
        if (/^checkpoint-\d+\.safetensors$/.test(file) && file !== tensors) rmSync(join(dir, file), { force: true });
      }
    },
  };
}
