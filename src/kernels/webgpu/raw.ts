/**
 * The WebGPU backend's own programs, which its custom kernels (custom.ts) dispatch: a tiled
 * matrix product whose operands are read through functions (plain strided matrices, or a
 * convolution's image patches gathered on the fly: an implicit im2col), split over the depth
 * where the output has too few tiles to fill a GPU, the split's partial products summed in
 * order; column sums in two passes (partial sums per chunk of rows, then the chunks in order);
 * pixels scaled by a table; Adam with its bias corrections computed on the host.
 */
import { FLUSH_SUBNORMAL, perItem, type Program } from './wgsl.ts';

/** Rows per chunk of the column sums' first pass. */
export const COLUMN_CHUNK = 256;

/** Output tile of the tiled products: TILE x TILE elements, each of 16x16 invocations computing 4x4, over depth steps of DEPTH. */
export const TILE = 64;
export const DEPTH = 16;

/**
 * How the products run: `tiled`, through workgroup memory (each workgroup loads a TILE x DEPTH
 * slice of A and DEPTH x TILE of B once for its 256 invocations), for GPUs; `direct`, each
 * invocation reading its operands itself, without barriers, for SwiftShader (a CPU, on which a
 * barrier costs every invocation a switch of context: a convolution ran 3 to 10 times slower
 * tiled). Both sum each element over the depth in the same order.
 */
export type ProductStyle = 'tiled' | 'direct';

/** Output blocks of 4 x 4 per invocation of the direct products, and invocations per workgroup. */
const DIRECT_WORKGROUP = 64;

/**
 * A product C[M, N] = Σ_p A(i, p) · B(p, j) over p < K, split over wid.z: split s sums p in
 * [s · args.splitDepth, (s + 1) · args.splitDepth). `prelude` defines M, N and K (u32) from
 * the arguments; `loadA(i, p)` and `loadB(p, j)` read the operands (they are only called
 * inside the bounds); `storeC(i, j, value, split)` writes one element of split wid.z. Each
 * invocation computes a 4 x 4 block, each element's sum running over p in increasing order.
 */
function product(style: ProductStyle, args: string, functions: string, prelude: string, loadA: string, loadB: string, store: string): Program {
  const module = `
${functions}
fn dimensions() -> vec3u {
  ${prelude}
  return vec3u(M, N, K);
}
fn loadA(i: u32, p: u32) -> f32 { ${loadA} }
fn loadB(p: u32, j: u32) -> f32 { ${loadB} }
fn storeC(i: u32, j: u32, value: f32, split: u32) { ${store} }`;
  const head = `
let size = dimensions();
let M = size.x;
let N = size.y;
let K = size.z;
let start = wid.z * u32(args.splitDepth);
let end = min(K, start + u32(args.splitDepth));
var acc: array<f32, 16>;`;
  const tail = `
for (var u = 0u; u < 4u; u++) {
  for (var v = 0u; v < 4u; v++) {
    let i = rowBase + u;
    let j = colBase + v;
    if (i < M && j < N) { storeC(i, j, acc[u * 4u + v], wid.z); }
  }
}`;
  const splits = (a: Record<string, number>) => Math.max(1, Math.ceil(dimensionsOf(a)[2] / a.splitDepth));
  if (style === 'direct') {
    return {
      args: `${args}, splitDepth: int`,
      workgroupSize: [DIRECT_WORKGROUP, 1, 1],
      module,
      body: `${head}
let columnBlocks = (N + 3u) / 4u;
let block = (wid.y * groups.x + wid.x) * ${DIRECT_WORKGROUP}u + lid.x;
if (block >= columnBlocks * ((M + 3u) / 4u)) { return; }
let rowBase = (block / columnBlocks) * 4u;
let colBase = (block % columnBlocks) * 4u;
for (var p = start; p < end; p++) {
  var a: array<f32, 4>;
  var b: array<f32, 4>;
  for (var u = 0u; u < 4u; u++) {
    if (rowBase + u < M) { a[u] = loadA(rowBase + u, p); }
    if (colBase + u < N) { b[u] = loadB(p, colBase + u); }
  }
  for (var u = 0u; u < 4u; u++) {
    for (var v = 0u; v < 4u; v++) { acc[u * 4u + v] += a[u] * b[v]; }
  }
}${tail}`,
      workgroups: (a) => {
        const [m, n] = dimensionsOf(a);
        const groups = Math.ceil((Math.ceil(m / 4) * Math.ceil(n / 4)) / DIRECT_WORKGROUP);
        const y = Math.ceil(groups / 65535);
        return [Math.ceil(groups / y), y, splits(a)];
      },
    };
  }
  return {
    args: `${args}, splitDepth: int`,
    workgroupSize: [16, 16, 1],
    module: `
var<workgroup> tileA: array<f32, ${DEPTH * TILE}>;
var<workgroup> tileB: array<f32, ${DEPTH * TILE}>;
${module}`,
    body: `${head}
let row0 = wid.y * ${TILE}u;
let col0 = wid.x * ${TILE}u;
let rowBase = row0 + lid.y * 4u;
let colBase = col0 + lid.x * 4u;
let t = lid.y * 16u + lid.x;
for (var p0 = start; p0 < end; p0 += ${DEPTH}u) {
  for (var q = 0u; q < 4u; q++) {
    let e = t + q * 256u;
    // A's tile: ${TILE} rows by ${DEPTH} steps of depth; B's: ${DEPTH} by ${TILE} columns.
    let ar = e / ${DEPTH}u;
    let ap = e % ${DEPTH}u;
    var a = 0.0;
    if (row0 + ar < M && p0 + ap < end) { a = loadA(row0 + ar, p0 + ap); }
    tileA[ap * ${TILE}u + ar] = a;
    let bp = e / ${TILE}u;
    let bc = e % ${TILE}u;
    var b = 0.0;
    if (col0 + bc < N && p0 + bp < end) { b = loadB(p0 + bp, col0 + bc); }
    tileB[bp * ${TILE}u + bc] = b;
  }
  workgroupBarrier();
  for (var d = 0u; d < ${DEPTH}u; d++) {
    var a: array<f32, 4>;
    var b: array<f32, 4>;
    for (var u = 0u; u < 4u; u++) {
      a[u] = tileA[d * ${TILE}u + lid.y * 4u + u];
      b[u] = tileB[d * ${TILE}u + lid.x * 4u + u];
    }
    for (var u = 0u; u < 4u; u++) {
      for (var v = 0u; v < 4u; v++) { acc[u * 4u + v] += a[u] * b[v]; }
    }
  }
  workgroupBarrier();
}${tail}`,
    workgroups: (a) => {
      const [m, n] = dimensionsOf(a);
      return [Math.ceil(n / TILE), Math.ceil(m / TILE), splits(a)];
    },
  };
}

/** M, N and K of a product's scalars (the same as each program's WGSL prelude). */
export function dimensionsOf(a: Record<string, number>): [number, number, number] {
  if ('rsA' in a) return [a.m, a.n, a.k];
  const pixels = a.batch * a.height * a.width;
  const taps = a.kernelSize * a.kernelSize;
  if (a.direction === 0) return [pixels, a.outChannels, taps * a.inChannels];
  if (a.direction === 1) return [pixels, a.inChannels, taps * a.outChannels];
  return [taps * a.inChannels, a.outChannels, pixels];
}

/**
 * Where a product writes: with one split, into C (overwriting, or adding where `accumulate`);
 * with several, split s's partial product into `partials` at s · M · N, summed by sumSplits.
 */
const STORE = `
let at = i * N_OF() + j;
if (args.splits > 1) { set_out(split * M_OF() * N_OF() + at, value); }
else if (args.accumulate != 0u) { set_out(at, get_out(at) + value); }
else { set_out(at, value); }`;

/** Kahan's compensated sum of pairs of floats: `total`, and the low-order bits it lost. */
const KAHAN = `
struct Compensated { total: vec2f, lost: vec2f }
fn add(sum: Compensated, value: vec2f) -> Compensated {
  let y = value - sum.lost;
  let t = sum.total + y;
  return Compensated(t, (t - sum.total) - y);
}`;

/** Shared by the convolutions: the NHWC geometry. */
const CONV_FUNCTIONS = `
fn pixels() -> u32 { return u32(args.batch * args.height * args.width); }
fn taps() -> u32 { return u32(args.kernelSize * args.kernelSize); }
/** Element (pixel, c) of an image tensor [pixels, channels] moved by (dy - pad, dx - pad) (sign +1) or -(dy - pad, dx - pad) (sign -1): 0 in the padding. */
fn shifted(pixel: u32, tap: u32, sign: i32, channels: u32, c: u32) -> i32 {
  let width = u32(args.width);
  let height = u32(args.height);
  let pad = (args.kernelSize - 1) / 2;
  let x = i32(pixel % width) + sign * (i32(tap % u32(args.kernelSize)) - pad);
  let y = i32((pixel / width) % height) + sign * (i32(tap / u32(args.kernelSize)) - pad);
  if (x < 0 || y < 0 || x >= args.width || y >= args.height) { return -1; }
  let image = pixel / (width * height);
  return i32(((image * height + u32(y)) * width + u32(x)) * channels + c);
}`;

const CONV_ARGS = 'out: floats out, first: floats, second: floats, batch: int, height: int, width: int, inChannels: int, outChannels: int, kernelSize: int, direction: int, splits: int, accumulate: bool';

/**
 * The convolutions without barriers (the `direct` style): one invocation per row and 4
 * columns of the product that RAW.conv computes, its loops over the taps and channels (or the
 * pixels) written out instead of decoding each depth index p; the same depth range of a split
 * and the same order of each element's sum (a tap in the padding adds nothing).
 */
const DIRECT_CONV: Program = {
  args: `${CONV_ARGS}, splitDepth: int`,
  workgroupSize: [DIRECT_WORKGROUP, 1, 1],
  module: `${CONV_FUNCTIONS}
fn M_OF() -> u32 { return select(pixels(), taps() * u32(args.inChannels), args.direction == 2); }
fn N_OF() -> u32 { return select(u32(args.outChannels), u32(args.inChannels), args.direction == 1); }
fn storeC(i: u32, j: u32, value: f32, split: u32) { ${STORE} }`,
  body: `
let M = M_OF();
let N = N_OF();
let C = u32(args.inChannels);
let O = u32(args.outChannels);
let k = u32(args.kernelSize);
let pad = (args.kernelSize - 1) / 2;
let width = u32(args.width);
let height = u32(args.height);
var K = taps() * C;
if (args.direction == 1) { K = taps() * O; }
if (args.direction == 2) { K = pixels(); }
let start = wid.z * u32(args.splitDepth);
let end = min(K, start + u32(args.splitDepth));
let columnBlocks = (N + 3u) / 4u;
let block = (wid.y * groups.x + wid.x) * ${DIRECT_WORKGROUP}u + lid.x;
if (block >= M * columnBlocks) { return; }
let i = block / columnBlocks;
let j = (block % columnBlocks) * 4u;
// Columns j .. j + 3; those past N read column N - 1 and are not stored.
let js = min(vec4u(j, j + 1u, j + 2u, j + 3u), vec4u(N - 1u));
var acc = vec4f(0.0);
if (args.direction == 2) {
  // Row i = (tap, c); the depth runs over the pixels p of the batch.
  let c = i % C;
  let dy = i32((i / C) / k) - pad;
  let dx = i32((i / C) % k) - pad;
  var x = start % width;
  var y = (start / width) % height;
  var image = start / (width * height);
  for (var p = start; p < end; p++) {
    let sx = i32(x) + dx;
    let sy = i32(y) + dy;
    if (sx >= 0 && sy >= 0 && sx < args.width && sy < args.height) {
      let v = get_first(((image * height + u32(sy)) * width + u32(sx)) * C + c);
      let at = p * O;
      acc += v * vec4f(get_second(at + js.x), get_second(at + js.y), get_second(at + js.z), get_second(at + js.w));
    }
    x++;
    if (x == width) {
      x = 0u;
      y++;
      if (y == height) {
        y = 0u;
        image++;
      }
    }
  }
} else {
  // Row i = a pixel; the depth runs over (tap, channel): the input's channels forward, the output's back.
  let x = i32(i % width);
  let y = i32((i / width) % height);
  let image = i / (width * height);
  let depth = select(O, C, args.direction == 0);
  let sign = select(-1, 1, args.direction == 0);
  for (var tap = 0u; tap < k * k; tap++) {
    let sx = x + sign * (i32(tap % k) - pad);
    let sy = y + sign * (i32(tap / k) - pad);
    if (sx < 0 || sy < 0 || sx >= args.width || sy >= args.height) { continue; }
    let base = ((image * height + u32(sy)) * width + u32(sx)) * depth - tap * depth;
    let first = max(start, tap * depth);
    let last = min(end, (tap + 1u) * depth);
    if (args.direction == 0) {
      for (var p = first; p < last; p++) {
        let at = p * O;
        acc += get_first(base + p) * vec4f(get_second(at + js.x), get_second(at + js.y), get_second(at + js.z), get_second(at + js.w));
      }
    } else {
      let weights = (tap * C + js) * O - vec4u(tap * depth);
      for (var p = first; p < last; p++) {
        acc += get_first(base + p) * vec4f(get_second(weights.x + p), get_second(weights.y + p), get_second(weights.z + p), get_second(weights.w + p));
      }
    }
  }
}
for (var u = 0u; u < 4u; u++) {
  if (j + u < N) { storeC(i, j + u, acc[u], wid.z); }
}`,
  workgroups: (a) => {
    const [m, n, k] = dimensionsOf(a);
    const groups = Math.ceil((m * Math.ceil(n / 4)) / DIRECT_WORKGROUP);
    const y = Math.ceil(groups / 65535);
    return [Math.ceil(groups / y), y, Math.max(1, Math.ceil(k / a.splitDepth))];
  },
};

export const RAW = {
  /** C[m, n] (+)= A · B with A(i, p) = a[i·rsA + p·csA] and B(p, j) = b[p·rsB + j·csB]: the three matrix products. */
  gemm: (style: ProductStyle) => product(
    style,
    'out: floats out, a: floats, b: floats, m: int, n: int, k: int, rsA: int, csA: int, rsB: int, csB: int, splits: int, accumulate: bool',
    `fn M_OF() -> u32 { return u32(args.m); }
fn N_OF() -> u32 { return u32(args.n); }`,
    'let M = u32(args.m); let N = u32(args.n); let K = u32(args.k);',
    'return get_a(i * u32(args.rsA) + p * u32(args.csA));',
    'return get_b(p * u32(args.rsB) + j * u32(args.csB));',
    STORE,
  ),
  /**
   * The convolutions as products over image patches, by `direction`: 0, the forward pass
   * out[pixel, o] = Σ_(tap, c) inp(pixel moved by tap, c) · w[tap, c, o] (first = inp, second =
   * w); 1, the input gradient dinp[pixel, c] = Σ_(tap, o) dout(pixel moved back by tap, o) ·
   * w[tap, c, o] (first = dout, second = w); 2, the weight gradient dw[(tap, c), o] += Σ_pixel
   * inp(pixel moved by tap, c) · dout[pixel, o] (first = inp, second = dout).
   */
  conv: (style: ProductStyle) => (style === 'direct' ? DIRECT_CONV : product(
    'tiled',
    CONV_ARGS,
    `${CONV_FUNCTIONS}
fn M_OF() -> u32 { return select(pixels(), taps() * u32(args.inChannels), args.direction == 2); }
fn N_OF() -> u32 { return select(u32(args.outChannels), u32(args.inChannels), args.direction == 1); }`,
    `let M = M_OF(); let N = N_OF();
  var K = taps() * u32(args.inChannels);
  if (args.direction == 1) { K = taps() * u32(args.outChannels); }
  if (args.direction == 2) { K = pixels(); }`,
    `let C = u32(args.inChannels);
  let O = u32(args.outChannels);
  if (args.direction == 0) {
    let at = shifted(i, p / C, 1, C, p % C);
    return select(0.0, get_first(u32(max(at, 0))), at >= 0);
  }
  if (args.direction == 1) {
    let at = shifted(i, p / O, -1, O, p % O);
    return select(0.0, get_first(u32(max(at, 0))), at >= 0);
  }
  let at = shifted(p, i / C, 1, C, i % C);
  return select(0.0, get_first(u32(max(at, 0))), at >= 0);`,
    `let C = u32(args.inChannels);
  let O = u32(args.outChannels);
  if (args.direction == 0) { return get_second(p * O + j); }
  if (args.direction == 1) { return get_second(((p / O) * C + j) * O + p % O); }
  return get_second(p * O + j);`,
    STORE,
  )),
  /** c[i] = (accumulate ? c[i] : 0) + Σ_s partials[s · size + i], splits in order. */
  sumSplits: perItem('c: floats out, partials: floats, size: int, splits: int, accumulate: bool', (a) => a.size, `
var sum = select(0.0, get_c(i), args.accumulate != 0u);
for (var s = 0u; s < u32(args.splits); s++) { sum += get_partials(s * u32(args.size) + i); }
set_c(i, sum);`),

  /**
   * Column sums, first pass: one invocation per column and chunk of COLUMN_CHUNK rows (the
   * invocations of a row's columns side by side, reading side by side) sums the chunk's rows in
   * order. `mode`: 0, Σ a; 1, Σ (a - mean)²; 2, Σ a and Σ a·b. partials[(chunk · 2 + q) · cols +
   * c] holds quantity q. Every sum is compensated (Kahan's): float32 sums of thousands of rows
   * keep about the float64 accuracy of the CPU backends (a plain float32 sum of 4,099 rows was
   * off by over 1e-5 of the result).
   */
  columnPartials: perItem(
    'partials: floats out, a: floats, b: floats, mean: floats, rows: int, cols: int, mode: int',
    (a) => a.cols * Math.max(1, Math.ceil(a.rows / COLUMN_CHUNK)),
    `
let cols = u32(args.cols);
let c = i % cols;
let chunk = i / cols;
let start = chunk * ${COLUMN_CHUNK}u;
let end = min(u32(args.rows), start + ${COLUMN_CHUNK}u);
var centre = 0.0;
if (args.mode == 1) { centre = get_mean(c); }
var sum = Compensated(vec2f(0.0), vec2f(0.0));
for (var r = start; r < end; r++) {
  let v = get_a(r * cols + c);
  var terms = vec2f(v, 0.0);
  if (args.mode == 1) { terms.x = (v - centre) * (v - centre); }
  if (args.mode == 2) { terms.y = v * get_b(r * cols + c); }
  sum = add(sum, terms);
}
set_partials((chunk * 2u) * cols + c, sum.total.x);
set_partials((chunk * 2u + 1u) * cols + c, sum.total.y);`,
    KAHAN,
  ),
  /**
   * Column sums, second pass: per column, the chunks' partial sums in order. `mode`: 0, first
   * += Σ (a bias gradient); 1, first = Σ / rows (a mean, a variance); 2, first = Σ of quantity 0,
   * second = Σ of quantity 1.
   */
  columnTotals: perItem(
    'first: floats out, second: floats out, partials: floats, chunks: int, cols: int, rows: int, mode: int',
    (a) => a.cols,
    `
let cols = u32(args.cols);
var sum = Compensated(vec2f(0.0), vec2f(0.0));
for (var chunk = 0u; chunk < u32(args.chunks); chunk++) {
  sum = add(sum, vec2f(get_partials((chunk * 2u) * cols + i), get_partials((chunk * 2u + 1u) * cols + i)));
}
let total = sum.total;
if (args.mode == 0) { set_first(i, get_first(i) + total.x); }
if (args.mode == 1) { set_first(i, total.x / f32(args.rows)); }
if (args.mode == 2) {
  set_first(i, total.x);
  set_second(i, total.y);
}`,
    KAHAN,
  ),

  /** out[i] = table[pixels[i]]: bytes to floats through a table of the 256 values (p / 255, rounded once on the host). */
  scalePixels: perItem('out: floats out, table: floats, pixels: bytes, n: int', (a) => a.n, `set_out(i, get_table(get_pixels(i)));`),

  /** Adam's update, the bias corrections folded in on the host: stepSize = lr / (1 - β1^t), correction2 = 1 - β2^t. */
  adamUpdate: perItem(
    'param: floats out, grad: floats, m: floats out, v: floats out, n: int, stepSize: float, beta1: float, beta2: float, epsilon: float, weightDecay: float, correction2: float',
    (a) => a.n,
    `
let g = get_grad(i) + args.weightDecay * get_param(i);
let m = flushSubnormal(args.beta1 * get_m(i) + (1.0 - args.beta1) * g);
let v = flushSubnormal(args.beta2 * get_v(i) + (1.0 - args.beta2) * g * g);
set_m(i, m);
set_v(i, v);
set_param(i, flushSubnormal(get_param(i) - args.stepSize * m / (sqrt(v / args.correction2) + args.epsilon)));`,
    FLUSH_SUBNORMAL,
  ),
};

export type RawName = keyof typeof RAW;
