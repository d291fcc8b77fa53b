import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Checkpointer, FitState } from './fit.ts';
import { writeFileAtomic, writeJsonAtomic } from '../io/atomic.ts';
import { decodeSafetensors, encodeSafetensors } from '../io/safetensors.ts';

const STATE_FILE = 'checkpoint.json';

interface StateJson {
  epochsDone: number;
  bestEpoch: number;
  bestAccuracy: number;
  optimizerSteps: number;
  optimizerBuffers: number;
  rngs: FitState['rngs'];
  history: FitState['history'];
  /** The tensors file this state goes with. */
  tensors: string;
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
      const state = JSON.parse(readFileSync(statePath, 'utf8')) as StateJson;
      const tensorsPath = join(dir, state.tensors);
      const { tensors } = decodeSafetensors(readFileSync(tensorsPath), tensorsPath);
      const get = (name: string) => {
        const tensor = tensors.get(name);
        if (!tensor) throw new Error(`${tensorsPath} lacks ${name}`);
        return tensor.data;
      };
      return {
        epochsDone: state.epochsDone,
        values: get('values') as Float32Array,
        bestValues: get('bestValues') as Float32Array,
        bestEpoch: state.bestEpoch,
        bestAccuracy: state.bestAccuracy,
        optimizer: {
          steps: state.optimizerSteps,
          buffers: Array.from({ length: state.optimizerBuffers }, (_, i) => get(`optimizer.${i}`) as Float32Array),
        },
        rngs: state.rngs,
        order: get('order') as Int32Array,
        history: state.history,
      };
    },

    save(state: FitState): void {
      mkdirSync(dir, { recursive: true });
      const tensors = `checkpoint-${state.epochsDone}.safetensors`;
      writeFileAtomic(
        join(dir, tensors),
        encodeSafetensors([
          { name: 'values', shape: [state.values.length], data: state.values },
          { name: 'bestValues', shape: [state.bestValues.length], data: state.bestValues },
          ...state.optimizer.buffers.map((data, i) => ({ name: `optimizer.${i}`, shape: [data.length], data })),
          { name: 'order', shape: [state.order.length], data: state.order },
        ]),
      );
      const json: StateJson = {
        epochsDone: state.epochsDone,
        bestEpoch: state.bestEpoch,
        bestAccuracy: state.bestAccuracy,
        optimizerSteps: state.optimizer.steps,
        optimizerBuffers: state.optimizer.buffers.length,
        rngs: state.rngs,
        history: state.history,
        tensors,
      };
      writeJsonAtomic(join(dir, STATE_FILE), json);
      for (const file of readdirSync(dir)) {
        if (/^checkpoint-\d+\.safetensors$/.test(file) && file !== tensors) rmSync(join(dir, file), { force: true });
      }
    },
  };
}
