/**
 * The WGSL compute shaders of the kernels that run as one dispatch (spec.ts: webgpu: 'direct'),
 * each over its declared arguments: the bindings and the accessors get_x / set_x come from the
 * declaration (wgsl.ts). Most are one invocation per element or row (perItem); every sum is
 * formed in a fixed order by one invocation, so a run repeats exactly on an adapter.
 */
import { KERNELS, WINOGRAD_MIN_CHANNELS, type KernelName } from '../spec.ts';
import type { WebGpuDirectKernel } from '../types.ts';
import { perItem, type Program } from './wgsl.ts';

const args = (name: KernelName) => KERNELS[name].args;

/** Dropout's counter-based generator (js.ts's dropoutWord): two rounds of the lowbias32 hash, the key mixed in before each. */
const DROPOUT_WORD = `
fn lowbias32(value: u32) -> u32 {
  var x = value;
  x ^= x >> 16u;
  x *= 0x7feb352du;
  x ^= x >> 15u;
  x *= 0x846ca68bu;
  return x ^ (x >> 16u);
}
fn dropoutWord(j: u32, key0: u32, key1: u32) -> u32 {
  return lowbias32(lowbias32(j ^ key0) + key1);
}`;

/** batchNormForward's body; with `relu`, the ReLU of the same y (batchNormReluForward): one expression for both, so both give its bits. */
const normalizeRows = (relu: boolean) => perItem(args(relu ? 'batchNormReluForward' : 'batchNormForward'), (a) => a.rows * a.channels, `
let c = i % u32(args.channels);
let x = (get_inp(i) - get_mean(c)) * get_invStd(c);
set_normalized(i, x);
let y = get_gamma(c) * x + get_beta(c);
set_out(i, ${relu ? 'select(0.0, y, y > 0.0)' : 'y'});`);

/** conv2dPrepare: the weight as it is, then (3x3, enough channels) U = G g Gᵀ, one invocation per filter (c, o). */
const CONV2D_PREPARE = `
let plane = u32(args.inChannels) * u32(args.outChannels);
let taps = u32(args.kernelSize) * u32(args.kernelSize);
for (var t = 0u; t < taps; t++) { set_prepared(t * plane + i, get_weight(t * plane + i)); }
if (taps != 9u || args.inChannels < ${WINOGRAD_MIN_CHANNELS} || args.outChannels < ${WINOGRAD_MIN_CHANNELS}) { continue; }
var t6: array<array<f32, 3>, 6>;
for (var x = 0u; x < 3u; x++) {
  let column = g6(get_weight(x * plane + i), get_weight((3u + x) * plane + i), get_weight((6u + x) * plane + i));
  for (var r = 0u; r < 6u; r++) { t6[r][x] = column[r]; }
}
for (var r = 0u; r < 6u; r++) {
  let row = g6(t6[r][0], t6[r][1], t6[r][2]);
  for (var c = 0u; c < 6u; c++) { set_prepared((9u + 6u * r + c) * plane + i, row[c]); }
}`;

/** G x for the three values of a filter's column or row (G as in spec.ts's conv2dPrepare). */
const G6 = `
fn g6(x0: f32, x1: f32, x2: f32) -> array<f32, 6> {
  let sixth = 1.0 / 6.0;
  return array<f32, 6>(0.25 * x0, -sixth * (x0 + x1 + x2), -sixth * (x0 - x1 + x2),
    (1.0 / 24.0) * x0 + (1.0 / 12.0) * x1 + sixth * x2, (1.0 / 24.0) * x0 - (1.0 / 12.0) * x1 + sixth * x2, x2);
}`;

export const PROGRAMS: Record<WebGpuDirectKernel, Program> = {
  conv2dPrepare: perItem(args('conv2dPrepare'), (a) => a.inChannels * a.outChannels, CONV2D_PREPARE, G6),
  addBias: perItem(args('addBias'), (a) => a.rows * a.cols, `set_out(i, get_out(i) + get_bias(i % u32(args.cols)));`),
  relu: perItem(args('relu'), (a) => a.n, `let v = get_inp(i);
set_out(i, select(0.0, v, v > 0.0));`),
  reluBackward: perItem(args('reluBackward'), (a) => a.n, `set_dinp(i, select(0.0, get_dout(i), get_out(i) > 0.0));`),
  multiply: perItem(args('multiply'), (a) => a.n, `set_out(i, get_a(i) * get_b(i));`),
  emaUpdate: perItem(args('emaUpdate'), (a) => a.n, `set_average(i, args.decay * get_average(i) + (1.0 - args.decay) * get_values(i));`),
  zero: perItem(args('zero'), (a) => a.n, `set_out(i, 0.0);`),
  copy: perItem(args('copy'), (a) => a.n, `set_out(i, get_inp(i));`),
  average: perItem(args('average'), (a) => a.n, `set_out(i, (get_a(i) + get_b(i)) * 0.5);`),
  argmaxRows: perItem(args('argmaxRows'), (a) => a.rows, `
let cols = u32(args.cols);
var best = 0u;
for (var c = 1u; c < cols; c++) {
  if (get_inp(i * cols + c) > get_inp(i * cols + best)) { best = c; }
}
set_out(i, f32(best));`),
  mirrorImages: perItem(args('mirrorImages'), (a) => a.batch * a.height * a.width * a.channels, `
let channels = u32(args.channels);
let width = u32(args.width);
let pixel = i / channels;
let x = pixel % width;
set_out(i, get_inp((pixel - x + width - 1u - x) * channels + i % channels));`),

  dropoutMask: perItem(args('dropoutMask'), (a) => a.n, `
let word = dropoutWord(4u * (i >> 3u) + (i & 3u), args.key0, args.key1);
let draw = select(word & 0xffffu, word >> 16u, (i & 7u) >= 4u);
set_mask(i, select(0.0, args.scale, draw < u32(args.threshold)));`, DROPOUT_WORD),

  softmaxCrossEntropy: perItem(args('softmaxCrossEntropy'), (a) => a.rows, `
let cols = u32(args.cols);
let row = i * cols;
var top = get_logits(row);
for (var c = 1u; c < cols; c++) { top = max(top, get_logits(row + c)); }
var sum = 0.0;
for (var c = 0u; c < cols; c++) {
  let e = exp(get_logits(row + c) - top);
  set_probs(row + c, e);
  sum += e;
}
for (var c = 0u; c < cols; c++) { set_probs(row + c, get_probs(row + c) / sum); }
// log p_c = (logit_c - max) - log(sum), exact even where p_c underflows.
let logSum = log(sum);
let own = get_logits(row + u32(get_labels(i))) - top - logSum;
if (args.smoothing > 0.0) {
  var logAll = 0.0;
  for (var c = 0u; c < cols; c++) { logAll += get_logits(row + c) - top - logSum; }
  set_losses(i, -((1.0 - args.smoothing) * own + (args.smoothing / f32(cols)) * logAll));
} else {
  set_losses(i, -own);
}`),
  softmaxCrossEntropyBackward: perItem(args('softmaxCrossEntropyBackward'), (a) => a.rows * a.cols, `
let cols = u32(args.cols);
let r = i / cols;
let scale = 1.0 / f32(args.rows);
var value = get_probs(i) * scale;
if (args.smoothing > 0.0) { value -= (args.smoothing / f32(cols)) * scale; }
if (i % cols == u32(get_labels(r))) { value -= select(scale, (1.0 - args.smoothing) * scale, args.smoothing > 0.0); }
set_dlogits(i, value);`),

  maxPool2x2: perItem(args('maxPool2x2'), (a) => a.batch * (a.height >> 1) * (a.width >> 1) * a.channels, `
let channels = u32(args.channels);
let width = u32(args.width);
let outW = width / 2u;
let outH = u32(args.height) / 2u;
let c = i % channels;
let x = (i / channels) % outW;
let y = (i / (channels * outW)) % outH;
let b = i / (channels * outW * outH);
let i00 = ((b * u32(args.height) + 2u * y) * width + 2u * x) * channels + c;
let i10 = i00 + width * channels;
set_out(i, max(max(get_inp(i00), get_inp(i00 + channels)), max(get_inp(i10), get_inp(i10 + channels))));`),
  // One invocation per input element: it takes its window's gradient if it is the window's
  // first element equal to the maximum (the odd last row and column belong to no window).
  maxPool2x2Backward: perItem(args('maxPool2x2Backward'), (a) => a.batch * a.height * a.width * a.channels, `
let channels = u32(args.channels);
let width = u32(args.width);
let height = u32(args.height);
let outW = width / 2u;
let outH = height / 2u;
let c = i % channels;
let x = (i / channels) % width;
let y = (i / (channels * width)) % height;
let b = i / (channels * width * height);
var value = 0.0;
if (x / 2u < outW && y / 2u < outH) {
  let o = ((b * outH + y / 2u) * outW + x / 2u) * channels + c;
  let top = get_out(o);
  let i00 = ((b * height + (y & ~1u)) * width + (x & ~1u)) * channels + c;
  let window = array<u32, 4>(i00, i00 + channels, i00 + width * channels, i00 + (width + 1u) * channels);
  var winner = i00;
  for (var w = 3; w >= 0; w--) {
    if (get_inp(window[w]) == top) { winner = window[w]; }
  }
  if (winner == i) { value = get_dout(o); }
}
set_dinp(i, value);`),

  batchNormForward: normalizeRows(false),
  batchNormReluForward: normalizeRows(true),
  batchNormBackward: perItem(args('batchNormBackward'), (a) => a.rows * a.channels, `
let c = i % u32(args.channels);
set_dinp(i, get_doutScale(c) * get_dout(i) - get_offset(c) - get_normalized(i) * get_normalizedScale(c));`),
  channelAffine: perItem(args('channelAffine'), (a) => a.rows * a.channels, `
let c = i % u32(args.channels);
set_out(i, get_inp(i) * get_scale(c) + get_shift(c));`),
  batchNormUpdate: perItem(args('batchNormUpdate'), (a) => a.channels, `
let variance = get_variance(i);
set_invStd(i, 1.0 / sqrt(variance + args.epsilon));
let rows = f32(args.rows);
let unbiased = select(variance, variance * rows / (rows - 1.0), args.rows > 1);
set_runningMean(i, (1.0 - args.momentum) * get_runningMean(i) + args.momentum * get_mean(i));
set_runningVar(i, (1.0 - args.momentum) * get_runningVar(i) + args.momentum * unbiased);`),
  batchNormScaleShift: perItem(args('batchNormScaleShift'), (a) => a.channels, `
let scale = get_gamma(i) / sqrt(get_runningVar(i) + args.epsilon);
set_scale(i, scale);
set_shift(i, get_beta(i) - get_runningMean(i) * scale);`),
  batchNormBackwardFactors: perItem(args('batchNormBackwardFactors'), (a) => a.channels, `
let scale = get_gamma(i) * get_invStd(i);
set_doutScale(i, scale);
set_offset(i, scale * get_sumDout(i) / f32(args.rows));
set_normalizedScale(i, scale * get_sumDoutNormalized(i) / f32(args.rows));`),

  sgdStep: perItem(args('sgdStep'), (a) => a.n, `
var g = get_grad(i) + args.weightDecay * get_param(i);
if (args.momentum != 0.0) {
  let v = args.momentum * get_velocity(i) + g;
  set_velocity(i, v);
  g = select(v, g + args.momentum * v, args.nesterov != 0u);
}
set_param(i, get_param(i) - args.learningRate * g);`),
};
