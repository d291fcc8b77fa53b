import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { NUM_CLASSES } from '../src/data/idx.ts';
import { loadTestSet } from '../src/data/load.ts';
import { argmax } from '../src/evaluation/predict.ts';
import { ourClassifier } from '../src/inference/classifier.ts';
import { loadNpy, saveNpy } from '../src/io/npy.ts';
import { loadKernels } from '../src/kernels/index.ts';
import { runPipeline } from '../src/runs/pipeline.ts';
import { REAL_DATA_DIR, tempDir } from './helpers/idx-files.ts';

// docs/load_in_pytorch.py, the example docs/export.md gives, run as a user would run it: the
// weights files of a tiny pipeline loaded into torch.nn, its probabilities against ours.
const SCRIPT = fileURLToPath(new URL('../docs/load_in_pytorch.py', import.meta.url));

/** The first Python that imports torch and numpy (Debian's python3-torch is /usr/bin/python3's, which another python3 may shadow). */
const python = ['python3', '/usr/bin/python3', 'python'].find((name) => spawnSync(name, ['-c', 'import torch, numpy'], { stdio: 'ignore' }).status === 0);
const required = process.env.FMNIST_REQUIRE_TORCH === '1';
const skip = python || required ? false : 'no Python with PyTorch here (Debian: apt-get install python3-torch); set FMNIST_REQUIRE_TORCH=1 to fail instead';

const overrides = {
  mlp: { trainLimit: 1000, epochs: 1, hidden: 16 },
  cnn: { trainLimit: 2000, epochs: 2, channels: [4, 4, 8, 8, 8], features: 16, convDropout: 0.1, featureDropout: 0.1, batchNorm: true, learningRate: 0.003 },
  featuresMlp: { epochs: 5, hidden: 32, dropout: 0, learningRate: 0.01 },
};

test('PyTorch loads model.safetensors of each model as docs/load_in_pytorch.py shows and gives our probabilities', { skip, timeout: 600_000 }, async () => {
  assert.ok(python, 'FMNIST_REQUIRE_TORCH=1 but no python3 imports torch and numpy');
  const dir = tempDir();
  await runPipeline({ seed: 4, overrides }, { outDir: join(dir, 'pipeline') });
  const kernels = await loadKernels('auto');
  const images = loadTestSet(REAL_DATA_DIR).data;
  const imagesFile = join(dir, 'images.npy');
  saveNpy(imagesFile, { dtype: 'uint8', shape: [images.count, 28, 28], data: images.pixels });
  for (const name of ['mlp', 'cnn', 'cnn-features-mlp']) {
    const modelDir = join(dir, 'pipeline', name);
    const outFile = join(dir, `${name}.npy`);
    execFileSync(python!, [SCRIPT, modelDir, imagesFile, outFile], { stdio: ['ignore', 'ignore', 'inherit'] });
    const theirs = loadNpy(outFile);
    assert.deepEqual(theirs.shape, [images.count, NUM_CLASSES]);
    const ours = await (await ourClassifier(modelDir, kernels)).classify(images.pixels, images.count);
    let largest = 0;
    for (let i = 0; i < ours.length; i++) largest = Math.max(largest, Math.abs(ours[i] - (theirs.data as Float32Array)[i]));
    assert.ok(largest < 1e-4, `${name}: largest probability difference ${largest}`);
    // The same class everywhere but on ties within that rounding.
    for (let i = 0; i < images.count; i++) {
      const a = argmax(ours, i * NUM_CLASSES, NUM_CLASSES);
      const b = argmax(theirs.data, i * NUM_CLASSES, NUM_CLASSES);
      if (a !== b) assert.ok(ours[i * NUM_CLASSES + a] - ours[i * NUM_CLASSES + b] <= 2 * largest, `${name}, image ${i}: ours ${a}, PyTorch ${b}`);
    }
  }
});
