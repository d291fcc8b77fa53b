/** A principal component analysis of row vectors. */
export interface Pca {
  /** [components, features] unit vectors, largest variance first. */
  components: Float64Array[];
  /** Variance along each component (eigenvalues of the covariance). */
  variances: number[];
  /** Share of the total variance each component explains. */
  explainedRatio: number[];
  /** [count, components] coordinates of each row along the components, after centring. */
  projection: Float64Array;
}

/**
 * The top `k` principal components of `data` ([count, features], row-major), by subspace
 * iteration on the covariance matrix in float64: multiply a block of k vectors by the
 * covariance, orthonormalise (Gram-Schmidt), repeat until the block stops moving. Each
 * component's sign is fixed so that its largest entry is positive, which makes the result
 * deterministic.
 */
export function pca(data: ArrayLike<number>, count: number, features: number, k = 2, maxIterations = 2000): Pca {
  if (count < 2) throw new Error(`PCA needs at least 2 rows, got ${count}`);
  if (k < 1 || k > features) throw new Error(`PCA: ${k} components asked of ${features} features`);
  const mean = new Float64Array(features);
  for (let i = 0; i < count; i++) for (let f = 0; f < features; f++) mean[f] += data[i * features + f];
  for (let f = 0; f < features; f++) mean[f] /= count;

  // covariance [features, features]: upper triangle accumulated row by row, then mirrored.
  const covariance = new Float64Array(features * features);
  const row = new Float64Array(features);
  for (let i = 0; i < count; i++) {
    for (let f = 0; f < features; f++) row[f] = data[i * features + f] - mean[f];
    for (let a = 0; a < features; a++) {
      const ra = row[a];
      if (ra === 0) continue;
      const base = a * features;
      for (let b = a; b < features; b++) covariance[base + b] += ra * row[b];
    }
  }
  let trace = 0;
  for (let a = 0; a < features; a++) {
    for (let b = a; b < features; b++) {
      const value = covariance[a * features + b] / (count - 1);
      covariance[a * features + b] = value;
      covariance[b * features + a] = value;
    }
    trace += covariance[a * features + a];
  }

  const multiply = (v: Float64Array): Float64Array => {
    const out = new Float64Array(features);
    for (let a = 0; a < features; a++) {
      let sum = 0;
      const base = a * features;
      for (let b = 0; b < features; b++) sum += covariance[base + b] * v[b];
      out[a] = sum;
    }
    return out;
  };
  const dot = (u: Float64Array, v: Float64Array) => u.reduce((sum, value, i) => sum + value * v[i], 0);
  const orthonormalise = (block: Float64Array[]): void => {
    for (let j = 0; j < block.length; j++) {
      for (let i = 0; i < j; i++) {
        const projection = dot(block[j], block[i]);
        for (let f = 0; f < features; f++) block[j][f] -= projection * block[i][f];
      }
      const norm = Math.sqrt(dot(block[j], block[j]));
      // A vector the covariance maps to zero (rank-deficient data): any unit vector will do.
      if (norm < 1e-300) block[j].fill(0).fill(1, j, j + 1);
      else for (let f = 0; f < features; f++) block[j][f] /= norm;
    }
  };

  // A fixed, non-degenerate start: no random numbers, so the same data gives the same result.
  let block: Float64Array[] = Array.from({ length: k }, (_, j) => Float64Array.from({ length: features }, (_, f) => Math.sin(1 + f * (j + 1.618)) + (f === j ? 1 : 0)));
  orthonormalise(block);
  for (let iteration = 0; iteration < maxIterations; iteration++) {
    const next = block.map(multiply);
    orthonormalise(next);
    // Converged when each vector is parallel to its predecessor (up to sign).
    const change = Math.max(...next.map((v, j) => 1 - Math.abs(dot(v, block[j]))));
    block = next;
    if (change < 1e-13) break;
  }
  const variances = block.map((v) => dot(v, multiply(v)));
  for (const v of block) {
    let largest = 0;
    for (let f = 1; f < features; f++) if (Math.abs(v[f]) > Math.abs(v[largest])) largest = f;
    if (v[largest] < 0) for (let f = 0; f < features; f++) v[f] = -v[f];
  }

  const projection = new Float64Array(count * k);
  for (let i = 0; i < count; i++) {
    for (let j = 0; j < k; j++) {
      let sum = 0;
      for (let f = 0; f < features; f++) sum += (data[i * features + f] - mean[f]) * block[j][f];
      projection[i * k + j] = sum;
    }
  }
  return {
    components: block,
    variances,
    explainedRatio: variances.map((variance) => (trace === 0 ? 0 : variance / trace)),
    projection,
  };
}
