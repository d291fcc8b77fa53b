import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadModel, saveModel } from '../src/models/model-file.ts';
import { decodeSafetensors, encodeSafetensors } from '../src/io/safetensors.ts';
import { jsKernels } from '../src/kernels/index.ts';
import { Sequential } from '../src/models/sequential.ts';
import { mlpArchitecture } from '../src/models/mlp.ts';
import { UserError } from '../src/errors.ts';
import { tempDir } from './helpers/idx-files.ts';
import { host, Rng } from './helpers/random.ts';

const kernels = jsKernels;

function trainedLookingModel(): Sequential {
  const model = new Sequential(kernels, mlpArchitecture({ hidden: 7, dropout: 0.1, init: 'he' }));
  model.initialize(Rng.fromSeed(1));
  host(model.parameters[1].value).fill(0.25);
  return model;
}

test('safetensors: header aligned to 8 bytes, round trip exact', () => {
  const a = { name: 'a', shape: [2, 3], data: Float32Array.from([1, 2, 3, 4, 5, 6.5]) };
  const b = { name: 'b.bias', shape: [1], data: Float32Array.from([-0.125]) };
  const bytes = encodeSafetensors([a, b], { note: 'x' });
  const headerLength = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  assert.equal(headerLength % 8, 0);
  const header = JSON.parse(Buffer.from(bytes.subarray(8, 8 + headerLength)).toString());
  assert.deepEqual(header.a, { dtype: 'F32', shape: [2, 3], data_offsets: [0, 24] });
  assert.deepEqual(header['b.bias'].data_offsets, [24, 28]);
  const decoded = decodeSafetensors(bytes, 'x');
  assert.deepEqual(decoded.tensors.get('a')?.data, a.data);
  assert.deepEqual(decoded.tensors.get('b.bias')?.data, b.data);
  assert.deepEqual(decoded.metadata, { note: 'x' });
  assert.throws(() => decodeSafetensors(bytes.subarray(0, 40), 'cut.safetensors'), /cut\.safetensors is not a valid safetensors file/);
});

test('a saved model loads back with identical weights and architecture', async () => {
  const dir = tempDir();
  const model = trainedLookingModel();
  await saveModel(dir, model, { kind: 'mlp', input: { type: 'pixels', scale: 1 / 255 }, classNames: ['a', 'b'] });
  const { model: loaded, description } = loadModel(dir, kernels);
  assert.deepEqual(loaded.values, model.values);
  assert.deepEqual(description.architecture, model.architecture);
  assert.deepEqual(description.parameters.map((p) => p.name), ['layers.0.weight', 'layers.0.bias', 'layers.3.weight', 'layers.3.bias']);
});

test('a damaged weights file is a clear error', async () => {
  const dir = tempDir();
  await saveModel(dir, trainedLookingModel(), { kind: 'mlp', input: { type: 'pixels', scale: 1 / 255 }, classNames: [] });
  const weights = join(dir, 'model.safetensors');
  writeFileSync(weights, readFileSync(weights).subarray(0, 100));
  assert.throws(() => loadModel(dir, kernels), (error: unknown) => error instanceof UserError && /Cannot load the model in .*not a valid safetensors file/.test(error.message));
});

const python = ['python3', 'python'].find((name) => spawnSync(name, ['-c', 'import numpy'], { stdio: 'ignore' }).status === 0);

test('numpy reads the weights file independently', { skip: python ? false : 'no Python with numpy here' }, async () => {
  const dir = tempDir();
  const model = trainedLookingModel();
  await saveModel(dir, model, { kind: 'mlp', input: { type: 'pixels', scale: 1 / 255 }, classNames: [] });
  // A reader written from the safetensors specification alone, in Python.
  const script = `
import json, struct, sys, numpy as np
raw = open(sys.argv[1], 'rb').read()
n = struct.unpack('<Q', raw[:8])[0]
header = json.loads(raw[8:8 + n])
out = {}
for name, entry in header.items():
    if name == '__metadata__': continue
    begin, end = entry['data_offsets']
    array = np.frombuffer(raw[8 + n + begin:8 + n + end], dtype='<f4').reshape(entry['shape'])
    out[name] = [list(array.shape), float(array.astype(np.float64).sum())]
print(json.dumps(out))
`;
  const result = JSON.parse(execFileSync(python!, ['-c', script, join(dir, 'model.safetensors')], { encoding: 'utf8' }));
  for (const parameter of model.parameters) {
    const [shape, sum] = result[parameter.name];
    assert.deepEqual(shape, parameter.shape);
    const expected = host(parameter.value).reduce((s, v) => s + v, 0);
    assert.ok(Math.abs(sum - expected) < 1e-4, `${parameter.name}: ${sum} vs ${expected}`);
  }
});
