import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pca } from '../src/evaluation/pca.ts';
import { Rng } from './helpers/random.ts';

/** Points spread along two known orthogonal directions with known variances, plus small noise. */
function knownData(rng: Rng, count: number) {
  const features = 7;
  const u = [0.5, -0.5, 0.5, 0.5, 0, 0, 0]; // unit length
  const w = [0, 0, 0, 0, 0.6, 0.8, 0]; // unit length, orthogonal to u
  const data = new Float64Array(count * features);
  const gauss = () => rng.normal();
  for (let i = 0; i < count; i++) {
    const a = 5 * gauss();
    const b = 2 * gauss();
    for (let f = 0; f < features; f++) data[i * features + f] = 3 + a * u[f] + b * w[f] + 0.05 * gauss();
  }
  return { data, features, u, w };
}

test('PCA finds the two directions of largest variance, ordered, with their variances', () => {
  const { data, features, u, w } = knownData(Rng.fromSeed(5), 4000);
  const result = pca(data, 4000, features, 2);
  const cosine = (a: ArrayLike<number>, b: number[]) => Math.abs(b.reduce((sum, value, i) => sum + value * a[i], 0));
  assert.ok(cosine(result.components[0], u) > 0.999, `first component along u: ${cosine(result.components[0], u)}`);
  assert.ok(cosine(result.components[1], w) > 0.999, `second component along w: ${cosine(result.components[1], w)}`);
  assert.ok(Math.abs(result.variances[0] - 25) < 2.5, `variance 1: ${result.variances[0]}`);
  assert.ok(Math.abs(result.variances[1] - 4) < 0.4, `variance 2: ${result.variances[1]}`);
  assert.ok(result.explainedRatio[0] > 0.8 && result.explainedRatio[0] + result.explainedRatio[1] < 1);
});

test('PCA projections are the centred rows along each unit component, whose sample variance is the eigenvalue', () => {
  const rng = Rng.fromSeed(9);
  const count = 300;
  const features = 5;
  const data = Float32Array.from({ length: count * features }, (_, i) => rng.uniform() * (1 + (i % features)));
  const result = pca(data, count, features, 3);
  for (let j = 0; j < 3; j++) {
    const norm = Math.hypot(...result.components[j]);
    assert.ok(Math.abs(norm - 1) < 1e-9, `component ${j} has unit length`);
    let sum = 0;
    let squares = 0;
    for (let i = 0; i < count; i++) {
      sum += result.projection[i * 3 + j];
      squares += result.projection[i * 3 + j] ** 2;
    }
    assert.ok(Math.abs(sum / count) < 1e-9, 'projections are centred');
    const variance = squares / (count - 1);
    assert.ok(Math.abs(variance - result.variances[j]) < 1e-9 * Math.max(1, variance), `component ${j}: ${variance} vs ${result.variances[j]}`);
    if (j > 0) assert.ok(result.variances[j] <= result.variances[j - 1] + 1e-12, 'ordered by variance');
  }
  // Orthogonal components.
  const dot = result.components[0].reduce((s, v, f) => s + v * result.components[1][f], 0);
  assert.ok(Math.abs(dot) < 1e-9);
  // Deterministic: the same data gives the same signs and values.
  assert.deepEqual(pca(data, count, features, 3).projection, result.projection);
});
