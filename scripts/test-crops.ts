/**
 * Multi-crop test-time augmentation (airbench's), measured on finished CNN runs: the validation
 * accuracy (the run's own split, split.npy) and test accuracy of each run's model when each image
 * is classified as itself, with its mirror image (test-time flipping, the project's), and with
 * its copies shifted by one pixel too (each with its mirror image), the probabilities averaged
 * with the weights named. Prints one JSON line per run.
 * Run: node --import tsx scripts/test-crops.ts RUN_DIR...
 */
import { pixelExamples, shiftImage } from '../src/data/dataset.ts';
import { PIXELS } from '../src/data/idx.ts';
import { loadTestSet, loadTrainingSet } from '../src/data/load.ts';
import { locateData } from '../src/data/locate.ts';
import { selectExamples } from '../src/data/split.ts';
import type { LabelledImages } from '../src/data/verify.ts';
import { evaluate } from '../src/evaluation/predict.ts';
import { loadKernels } from '../src/kernels/index.ts';
import { SoftmaxCrossEntropy } from '../src/layers/softmax-cross-entropy.ts';
import { RunFolder } from '../src/runs/run-folder.ts';

/** The images shifted by (dy, dx) pixels (vacated pixels 0, the background), mirrored first where asked. */
function view(images: LabelledImages, dy: number, dx: number, mirror: boolean): LabelledImages {
  const pixels = new Uint8Array(images.pixels.length);
  for (let i = 0; i < images.count; i++) shiftImage(pixels, i * PIXELS, images.pixels, i * PIXELS, dy, dx, mirror, 1);
  return { ...images, pixels };
}

const location = await locateData();
const training = loadTrainingSet(location.dir).data;
const testSet = loadTestSet(location.dir).data;
const kernels = await loadKernels('auto', {});
for (const dir of process.argv.slice(2)) {
  const folder = new RunFolder(dir);
  const { model } = folder.loadModel(kernels);
  const split = folder.readSplit(training.count)!;
  const parts = { val: selectExamples(training, split.validation), test: testSet };
  const loss = new SoftmaxCrossEntropy(kernels, 10);
  const out: Record<string, string> = {};
  for (const [name, images] of Object.entries(parts)) {
    const probs = new Map<string, Float32Array>();
    const shifts = [[0, 0], [-1, -1], [1, 1], [-1, 1], [1, -1], [0, 1], [0, -1], [1, 0], [-1, 0]];
    for (const [dy, dx] of shifts) {
      for (const mirror of [false, true]) {
        probs.set(`${dy},${dx},${mirror}`, (await evaluate(kernels, model, loss, pixelExamples(view(images, dy, dx, mirror)))).probabilities);
      }
    }
    // The accuracy of the probabilities of the views named, weighted.
    const acc = (weights: [string, number][]) => {
      let correct = 0;
      for (let i = 0; i < images.count; i++) {
        let best = -1;
        let bestProbability = -1;
        for (let c = 0; c < 10; c++) {
          let p = 0;
          for (const [key, weight] of weights) p += weight * probs.get(key)![i * 10 + c];
          if (p > bestProbability) {
            bestProbability = p;
            best = c;
          }
        }
        if (best === images.labels[i]) correct++;
      }
      return ((100 * correct) / images.count).toFixed(2);
    };
    const pair = (dy: number, dx: number, w: number): [string, number][] => [[`${dy},${dx},false`, w / 2], [`${dy},${dx},true`, w / 2]];
    out[`${name} plain`] = acc([['0,0,false', 1]]);
    out[`${name} flip`] = acc(pair(0, 0, 1));
    out[`${name} crops3 (airbench 0.5/0.25/0.25)`] = acc([...pair(0, 0, 0.5), ...pair(-1, -1, 0.25), ...pair(1, 1, 0.25)]);
    out[`${name} crops5 diag`] = acc([...pair(0, 0, 0.5), ...pair(-1, -1, 0.125), ...pair(1, 1, 0.125), ...pair(-1, 1, 0.125), ...pair(1, -1, 0.125)]);
    out[`${name} crops9 uniform`] = acc(shifts.flatMap(([dy, dx]) => pair(dy, dx, 1 / 9)));
    out[`${name} crops5 axis`] = acc([...pair(0, 0, 0.5), ...pair(0, 1, 0.125), ...pair(0, -1, 0.125), ...pair(1, 0, 0.125), ...pair(-1, 0, 0.125)]);
  }
  console.log(JSON.stringify({ dir, ...out }));
  model.dispose();
}
