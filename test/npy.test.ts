import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { encodeNpy, loadNpy, saveNpy } from '../src/io/npy.ts';
import { tempDir } from './helpers/idx-files.ts';

test('.npy header: magic, version 1.0, 64-byte aligned data, the dict numpy expects', () => {
  const bytes = encodeNpy({ dtype: 'float32', shape: [2, 3], data: Float32Array.from([1, 2, 3, 4, 5, 6.5]) });
  assert.deepEqual([...bytes.subarray(0, 8)], [0x93, 78, 85, 77, 80, 89, 1, 0]);
  const headerLength = new DataView(bytes.buffer).getUint16(8, true);
  assert.equal((10 + headerLength) % 64, 0);
  const header = Buffer.from(bytes.subarray(10, 10 + headerLength)).toString('latin1');
  assert.match(header, /^\{'descr': '<f4', 'fortran_order': False, 'shape': \(2, 3\), \} *\n$/);
  assert.equal(bytes.length, 10 + headerLength + 24);
  assert.deepEqual([...new Float32Array(bytes.slice(10 + headerLength).buffer)], [1, 2, 3, 4, 5, 6.5]);
  const labels = encodeNpy({ dtype: 'uint8', shape: [4], data: Uint8Array.from([0, 9, 3, 3]) });
  assert.match(Buffer.from(labels).toString('latin1'), /'descr': '\|u1', 'fortran_order': False, 'shape': \(4,\), \}/);
});

test('.npy round trip', () => {
  const path = join(tempDir(), 'x.npy');
  saveNpy(path, { dtype: 'float32', shape: [3, 2], data: Float32Array.from([0.5, -1, 2, 3, 4, 1e-8]) });
  assert.deepEqual(loadNpy(path), { dtype: 'float32', shape: [3, 2], data: Float32Array.from([0.5, -1, 2, 3, 4, 1e-8]) });
});

const python = ['python3', 'python'].find((name) => spawnSync(name, ['-c', 'import numpy'], { stdio: 'ignore' }).status === 0);

test('numpy.load reads the files with the documented shapes and dtypes', { skip: python ? false : 'no Python with numpy here' }, () => {
  const dir = tempDir();
  saveNpy(join(dir, 'x.npy'), { dtype: 'float32', shape: [2, 3], data: Float32Array.from([1, 2, 3, 4, 5, 6.25]) });
  saveNpy(join(dir, 'y.npy'), { dtype: 'uint8', shape: [2], data: Uint8Array.from([7, 9]) });
  const script = `import json, sys, numpy as np
x = np.load(sys.argv[1]); y = np.load(sys.argv[2])
print(json.dumps([str(x.dtype), list(x.shape), x.tolist(), str(y.dtype), list(y.shape), y.tolist()]))`;
  const out = JSON.parse(execFileSync(python!, ['-c', script, join(dir, 'x.npy'), join(dir, 'y.npy')], { encoding: 'utf8' }));
  assert.deepEqual(out, ['float32', [2, 3], [[1, 2, 3], [4, 5, 6.25]], 'uint8', [2], [7, 9]]);
});
