/**
 * A compute program's WGSL, written from its argument declaration (spec.ts's syntax) and its
 * body: the uniform struct of its scalars and array offsets, its storage bindings, and an
 * accessor per array, so that a shader's body reads `get_inp(i)` and writes `set_out(i, v)`
 * whatever buffers the arrays lie in. Tensors are ranges of buffers; a call binds each distinct
 * buffer once (WebGPU forbids binding a buffer it writes twice in one dispatch), so a program
 * is compiled once per way its arrays share buffers (its layout), almost always one.
 */
import { parseArgs, type Arg } from '../spec.ts';

/** Invocations per workgroup of the one-dimensional programs. */
export const WORKGROUP = 256;
/** The most workgroups along one dimension of a dispatch (WebGPU's guaranteed limit). */
export const MAX_WORKGROUPS = 65535;

/** A compute program: arguments, the entry point's body, and how many workgroups a call takes. */
export interface Program {
  /** `name: type, ...` as in spec.ts; floats are tensors, bytes and ints the host's arrays. */
  args: string;
  /** Invocations per workgroup, [x, y, z]. */
  workgroupSize: readonly [number, number, number];
  /** Declarations at module scope: workgroup memory, helper functions. */
  module?: string;
  /**
   * The body of `fn main`, with `gid`, `lid`, `wid` and `groups` (global, local and workgroup
   * ids, workgroups dispatched: vec3u), `args` (the scalars; array `x` starts at `args.x_at`),
   * `get_x(i)` and, for the written arrays, `set_x(i, value)` (i: u32).
   */
  body: string;
  /** Workgroups to dispatch, [x, y, z], for the call's scalar arguments. */
  workgroups(scalars: Record<string, number>): readonly [number, number, number];
  /** For the one-dimensional programs of perItem: the items its loop covers, passed as the uniform `args.total`. */
  items?(scalars: Record<string, number>): number;
}

/**
 * flushSubnormal(x): +0 where x is subnormal, x otherwise. The state that training carries from
 * step to step (weights, the optimisers' moments and velocity, the moving average) is stored
 * through it, as in every backend (spec.ts, sgdStep, says why). WGSL lets a GPU flush
 * subnormal numbers itself, or not; this makes it the same everywhere.
 */
export const FLUSH_SUBNORMAL = `
fn flushSubnormal(x: f32) -> f32 { return select(x, 0.0, abs(x) < 1.17549435e-38); }`;

/** A one-dimensional program over `count(scalars)` items: `body` runs for each `i: u32` below `total`, in a grid-stride loop. */
export function perItem(args: string, items: (scalars: Record<string, number>) => number, body: string, module?: string): Program {
  return {
    args,
    module,
    workgroupSize: [WORKGROUP, 1, 1],
    body: `for (var i = gid.x; i < args.total; i += groups.x * ${WORKGROUP}u) {
    ${body.trim().split('\n').join('\n    ')}
  }`,
    workgroups: (scalars) => [Math.max(1, Math.min(MAX_WORKGROUPS, Math.ceil(items(scalars) / WORKGROUP))), 1, 1],
    items,
  };
}

/** Where each array argument of a call lies: the binding of its buffer (floats), or the host's uploads (bytes, ints). */
export interface Layout {
  /** For each argument in declaration order: the index of its buffer among the call's distinct buffers, -1 for host arrays, null for scalars. */
  buffers: (number | null)[];
  /** Per distinct buffer: whether the call writes it. */
  written: boolean[];
  /** Whether the call has host arrays (one binding: the uploads of this submission). */
  uploads: boolean;
}

export const layoutKey = (layout: Layout): string => `${layout.buffers.map((b) => (b === null ? '' : b)).join(',')}|${layout.written.map((w) => (w ? 'w' : 'r')).join('')}|${layout.uploads ? 'u' : ''}`;

const SCALAR_TYPES: Record<string, string> = { int: 'i32', uint: 'u32', float: 'f32', bool: 'u32' };

/** The uniform fields of a program's arguments, in order: each scalar, then each array's offset (`x_at`), then `total` for perItem programs. */
export function uniformFields(args: Arg[], perItemTotal: boolean): { name: string; type: string; source: Arg | 'total' }[] {
  const fields: { name: string; type: string; source: Arg | 'total' }[] = [];
  for (const arg of args) if (SCALAR_TYPES[arg.type]) fields.push({ name: arg.name, type: SCALAR_TYPES[arg.type], source: arg });
  for (const arg of args) if (!SCALAR_TYPES[arg.type]) fields.push({ name: `${arg.name}_at`, type: 'u32', source: arg });
  if (perItemTotal) fields.push({ name: 'total', type: 'u32', source: 'total' });
  return fields;
}

/** The program's WGSL for one layout of its arrays over buffers. */
export function programSource(program: Program, layout: Layout): string {
  const args = parseArgs(program.args);
  const perItemTotal = program.items !== undefined;
  const fields = uniformFields(args, perItemTotal);
  const lines = [`struct Args {\n${fields.map((f) => `  ${f.name}: ${f.type},`).join('\n')}\n  pad: u32,\n}`, '@group(0) @binding(0) var<uniform> args: Args;'];
  layout.written.forEach((written, b) => lines.push(`@group(0) @binding(${1 + b}) var<storage, ${written ? 'read_write' : 'read'}> tensor${b}: array<f32>;`));
  if (layout.uploads) lines.push(`@group(0) @binding(${1 + layout.written.length}) var<storage, read> uploads: array<u32>;`);
  args.forEach((arg, i) => {
    const buffer = layout.buffers[i];
    if (buffer === null) return;
    const at = `args.${arg.name}_at`;
    if (arg.type === 'floats' || arg.type === 'floats out') {
      lines.push(`fn get_${arg.name}(i: u32) -> f32 { return tensor${buffer}[${at} + i]; }`);
      if (arg.type === 'floats out') lines.push(`fn set_${arg.name}(i: u32, value: f32) { tensor${buffer}[${at} + i] = value; }`);
    } else if (arg.type === 'bytes') {
      // Bytes packed four to a word, little-endian; the offset counts bytes.
      lines.push(`fn get_${arg.name}(i: u32) -> u32 { let b = ${at} + i; return (uploads[b >> 2u] >> ((b & 3u) * 8u)) & 255u; }`);
    } else {
      lines.push(`fn get_${arg.name}(i: u32) -> i32 { return bitcast<i32>(uploads[${at} + i]); }`);
    }
  });
  if (program.module) lines.push(program.module.trim());
  const [x, y, z] = program.workgroupSize;
  const body = program.body;
  lines.push(`@compute @workgroup_size(${x}, ${y}, ${z})
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  ${body.trim()}
}`);
  return `${lines.join('\n')}\n`;
}
