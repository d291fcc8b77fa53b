/**
 * What the WebGPU backend does with a device: tensors (ranges of GPU buffers, pooled by size),
 * and the recording of work. Every kernel call becomes a dispatch recorded into one command
 * encoder, in call order; the host's writes become copies recorded among them. Each dispatch's
 * scalars and array offsets go to a slot of a uniform buffer, and the host's arrays it reads
 * (bytes, ints: labels, a batch's pixels) and the data of writes go to an uploads buffer; both
 * are written to the device once per submission, just before it. The recorded work is submitted
 * when a read needs it, when those buffers fill, and every FLUSH_DISPATCHES dispatches (so that
 * the GPU works while the host records more). A read copies its range into a mappable buffer and
 * waits for it.
 */
import { parseArgs, type Arg } from '../spec.ts';
import type { Tensor } from '../types.ts';
import { layoutKey, programSource, uniformFields, type Layout, type Program } from './wgsl.ts';

/** Bytes of a dispatch's uniform slot (WebGPU's minimum uniform offset alignment is at most 256). */
const SLOT_BYTES = 256;
/** Slots in the uniform buffer: the most dispatches in one submission. */
const SLOTS = 4096;
/** Dispatches recorded before the work is submitted, so that the GPU starts on it. */
const FLUSH_DISPATCHES = 512;
/** Bytes of the uploads buffer at first; it grows to the largest submission's. */
const UPLOAD_BYTES = 4 << 20;

/** A range of a GPU buffer, in floats. */
export class GpuTensor implements Tensor {
  constructor(
    readonly buffer: GPUBuffer,
    /** First float of the range in the buffer. */
    readonly offset: number,
    readonly length: number,
    /** Whether this is the whole tensor that `allocate` gave (only those are released). */
    readonly root: boolean,
  ) {}

  subarray(begin = 0, end = this.length): GpuTensor {
    const clamp = (value: number) => Math.min(this.length, Math.max(0, value < 0 ? this.length + value : value));
    const from = clamp(begin);
    return new GpuTensor(this.buffer, this.offset + from, Math.max(0, clamp(end) - from), false);
  }
}

interface CompiledProgram {
  /** Numbers the programs, for the keys of bind groups. */
  index: number;
  args: Arg[];
  fields: ReturnType<typeof uniformFields>;
  variants: Map<string, { pipeline: GPUComputePipeline; layout: GPUBindGroupLayout }>;
}

/** Bind groups kept for reuse (keyed by program, layout and buffers); beyond this many the cache starts over. */
const MAX_BIND_GROUPS = 4096;

/** Whether an argument is an array of the host's memory (uploaded with the call). */
const isHostArray = (arg: Arg) => arg.type === 'bytes' || arg.type === 'ints' || arg.type === 'ints counted';

/** Round up to a multiple of `step`. */
const roundUp = (value: number, step: number) => Math.ceil(value / step) * step;

export class Engine {
  private encoder: GPUCommandEncoder | null = null;
  private pass: GPUComputePassEncoder | null = null;
  private dispatches = 0;
  private readonly uniformHost = new ArrayBuffer(SLOTS * SLOT_BYTES);
  private readonly uniformInts = new Int32Array(this.uniformHost);
  private readonly uniformWords = new Uint32Array(this.uniformHost);
  private readonly uniformFloats = new Float32Array(this.uniformHost);
  private readonly uniformDevice: GPUBuffer;
  private uploadHost = new Uint8Array(UPLOAD_BYTES);
  private uploadDevice: GPUBuffer;
  private uploaded = 0;
  private readonly pool = new Map<number, GPUBuffer[]>();
  private readonly staging = new Map<number, GPUBuffer[]>();
  private readonly ids = new WeakMap<GPUBuffer, number>();
  private nextId = 0;
  private readonly compiled = new Map<Program, CompiledProgram>();
  private readonly bindGroups = new Map<string, GPUBindGroup>();
  private error: string | null = null;

  constructor(readonly device: GPUDevice) {
    this.uniformDevice = device.createBuffer({ size: SLOTS * SLOT_BYTES, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
    this.uploadDevice = this.uploadBuffer(UPLOAD_BYTES);
    device.addEventListener('uncapturederror', (event) => {
      this.error ??= (event as GPUUncapturedErrorEvent).error.message;
    });
    void device.lost.then((info) => {
      this.error ??= `the GPU device was lost (${info.message || info.reason})`;
    });
  }

  private uploadBuffer(bytes: number): GPUBuffer {
    return this.device.createBuffer({ size: bytes, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST });
  }

  private id(buffer: GPUBuffer): number {
    let id = this.ids.get(buffer);
    if (id === undefined) {
      id = this.nextId++;
      this.ids.set(buffer, id);
    }
    return id;
  }

  /** A zero-filled tensor of `length` floats (a pooled buffer is cleared in order with the work). */
  allocate(length: number, zeroed = true): GpuTensor {
    if (!Number.isInteger(length) || length < 0) throw new RangeError(`allocate: ${length} is not a length`);
    const bytes = Math.max(16, roundUp(length * 4, 16));
    const reused = this.pool.get(bytes)?.pop();
    if (reused && zeroed) this.commands().clearBuffer(reused);
    const buffer = reused ?? this.device.createBuffer({ size: bytes, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST });
    return new GpuTensor(buffer, 0, length, true);
  }

  /** Gives a tensor's buffer back to the pool: work recorded before still uses it; work recorded after may reuse it. */
  release(tensor: Tensor): void {
    const own = this.tensor(tensor, 'release');
    if (!own.root) throw new Error('release: give back the tensor that allocate gave, not a subarray of it');
    const list = this.pool.get(own.buffer.size);
    if (list?.includes(own.buffer)) throw new Error('release: the tensor was released already');
    if (list) list.push(own.buffer);
    else this.pool.set(own.buffer.size, [own.buffer]);
  }

  /** `tensor` as this backend's, or a clear error. */
  tensor(tensor: unknown, where: string): GpuTensor {
    if (tensor instanceof GpuTensor) return tensor;
    throw new TypeError(`${where}: the webgpu backend takes its own tensors (from allocate), not ${tensor instanceof Float32Array ? 'a Float32Array' : typeof tensor}`);
  }

  /** The encoder, with no compute pass open: for copies and clears. */
  private commands(): GPUCommandEncoder {
    if (this.pass) {
      this.pass.end();
      this.pass = null;
    }
    this.encoder ??= this.device.createCommandEncoder();
    return this.encoder;
  }

  /**
   * Makes room for one more dispatch (when `dispatch`) and `bytes` more uploads in this
   * submission: submits the work recorded first where they would not fit.
   */
  private reserve(bytes: number, dispatch: boolean): void {
    if ((dispatch && this.dispatches >= SLOTS) || this.uploaded + bytes > this.uploadDevice.size) this.flush();
    if (bytes > this.uploadDevice.size) {
      this.uploadDevice.destroy();
      this.uploadDevice = this.uploadBuffer(roundUp(bytes, 1 << 20));
      this.uploadHost = new Uint8Array(this.uploadDevice.size);
    }
  }

  /** Appends host bytes to the uploads of this submission (4-byte aligned; room reserved); returns their byte offset. */
  private upload(bytes: Uint8Array): number {
    const at = this.uploaded;
    this.uploadHost.set(bytes, at);
    this.uploaded += roundUp(bytes.byteLength, 4);
    return at;
  }

  /** Copies `source` into `target` from element `offset`, in order with the work recorded. */
  write(target: Tensor, source: Float32Array, offset = 0): void {
    const own = this.tensor(target, 'write');
    if (offset < 0 || offset + source.length > own.length) throw new RangeError(`write: ${source.length} floats from ${offset} do not fit a tensor of ${own.length}`);
    if (source.length === 0) return;
    this.reserve(source.byteLength, false);
    const at = this.upload(new Uint8Array(source.buffer, source.byteOffset, source.byteLength));
    this.commands().copyBufferToBuffer(this.uploadDevice, at, own.buffer, (own.offset + offset) * 4, source.byteLength);
  }

  /** A host copy of the tensor, once the work recorded before has run. */
  async read(source: Tensor): Promise<Float32Array> {
    const own = this.tensor(source, 'read');
    const bytes = own.length * 4;
    if (bytes === 0) {
      this.throwIfFailed();
      return new Float32Array(0);
    }
    const size = roundUp(bytes, 256);
    const staging = this.staging.get(size)?.pop() ?? this.device.createBuffer({ size, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    this.commands().copyBufferToBuffer(own.buffer, own.offset * 4, staging, 0, bytes);
    this.flush();
    try {
      await staging.mapAsync(GPUMapMode.READ, 0, bytes);
    } catch (error) {
      this.throwIfFailed();
      throw error;
    }
    const result = new Float32Array(staging.getMappedRange(0, bytes).slice(0));
    staging.unmap();
    const list = this.staging.get(size);
    if (list) list.push(staging);
    else this.staging.set(size, [staging]);
    this.throwIfFailed();
    return result;
  }

  private throwIfFailed(): void {
    if (this.error !== null) throw new Error(`the GPU reported an error: ${this.error}`);
  }

  /** Submits the work recorded, after writing its uniforms and uploads to the device. */
  flush(): void {
    if (!this.encoder) return;
    if (this.pass) {
      this.pass.end();
      this.pass = null;
    }
    if (this.dispatches > 0) this.device.queue.writeBuffer(this.uniformDevice, 0, this.uniformHost, 0, this.dispatches * SLOT_BYTES);
    if (this.uploaded > 0) this.device.queue.writeBuffer(this.uploadDevice, 0, this.uploadHost, 0, this.uploaded);
    this.device.queue.submit([this.encoder.finish()]);
    this.encoder = null;
    this.dispatches = 0;
    this.uploaded = 0;
  }

  private compile(program: Program): CompiledProgram {
    let compiled = this.compiled.get(program);
    if (!compiled) {
      const args = parseArgs(program.args);
      compiled = { index: this.compiled.size, args, fields: uniformFields(args, program.items !== undefined), variants: new Map() };
      this.compiled.set(program, compiled);
    }
    return compiled;
  }

  private variant(program: Program, compiled: CompiledProgram, layout: Layout): { pipeline: GPUComputePipeline; layout: GPUBindGroupLayout } {
    const key = layoutKey(layout);
    let variant = compiled.variants.get(key);
    if (!variant) {
      const entries: GPUBindGroupLayoutEntry[] = [{ binding: 0, visibility: GPUShaderStage.COMPUTE, buffer: { type: 'uniform', hasDynamicOffset: true, minBindingSize: SLOT_BYTES } }];
      layout.written.forEach((written, b) => entries.push({ binding: 1 + b, visibility: GPUShaderStage.COMPUTE, buffer: { type: written ? 'storage' : 'read-only-storage' } }));
      if (layout.uploads) entries.push({ binding: 1 + layout.written.length, visibility: GPUShaderStage.COMPUTE, buffer: { type: 'read-only-storage' } });
      const bindGroupLayout = this.device.createBindGroupLayout({ entries });
      const module = this.device.createShaderModule({ code: programSource(program, layout) });
      const pipeline = this.device.createComputePipeline({ layout: this.device.createPipelineLayout({ bindGroupLayouts: [bindGroupLayout] }), compute: { module, entryPoint: 'main' } });
      variant = { pipeline, layout: bindGroupLayout };
      compiled.variants.set(key, variant);
    }
    return variant;
  }

  /** Records one dispatch of `program` with its arguments by name (tensors, host arrays, numbers, booleans). */
  dispatch(program: Program, named: Record<string, unknown>): void {
    const compiled = this.compile(program);
    const scalars: Record<string, number> = {};
    for (const arg of compiled.args) {
      const value = named[arg.name];
      if (arg.type !== 'floats' && arg.type !== 'floats out' && !isHostArray(arg)) scalars[arg.name] = typeof value === 'boolean' ? Number(value) : (value as number);
    }
    const [x, y, z] = program.workgroups(scalars);
    if (x === 0 || y === 0 || z === 0) return;
    const hostBytes = compiled.args.reduce((sum, arg) => sum + (isHostArray(arg) ? roundUp((named[arg.name] as ArrayBufferView).byteLength, 4) : 0), 0);
    this.reserve(hostBytes, true);

    const buffers: GPUBuffer[] = [];
    const layout: Layout = { buffers: [], written: [], uploads: false };
    const offsets: Record<string, number> = {};
    for (const arg of compiled.args) {
      const value = named[arg.name];
      if (arg.type === 'floats' || arg.type === 'floats out') {
        const tensor = this.tensor(value, arg.name);
        let index = buffers.indexOf(tensor.buffer);
        if (index < 0) {
          index = buffers.push(tensor.buffer) - 1;
          layout.written.push(false);
        }
        if (arg.type === 'floats out') layout.written[index] = true;
        layout.buffers.push(index);
        offsets[arg.name] = tensor.offset;
      } else if (isHostArray(arg)) {
        const array = value as Uint8Array | Int32Array;
        const at = this.upload(new Uint8Array(array.buffer, array.byteOffset, array.byteLength));
        layout.buffers.push(-1);
        layout.uploads = true;
        offsets[arg.name] = arg.type === 'bytes' ? at : at / 4;
      } else {
        layout.buffers.push(null);
      }
    }
    // The uniform slot: the scalars in declaration order, then the offsets, then the items.
    const slot = this.dispatches;
    const base = (slot * SLOT_BYTES) / 4;
    compiled.fields.forEach((field, i) => {
      const source = field.source;
      const value = source === 'total' ? program.items!(scalars) : source.name in offsets ? offsets[source.name] : scalars[source.name];
      if (field.type === 'f32') this.uniformFloats[base + i] = value;
      else if (field.type === 'i32') this.uniformInts[base + i] = value;
      else this.uniformWords[base + i] = value >>> 0;
    });
    const variant = this.variant(program, compiled, layout);
    const key = `${compiled.index}|${layoutKey(layout)}|${buffers.map((buffer) => this.id(buffer)).join(',')}|${layout.uploads ? this.id(this.uploadDevice) : ''}`;
    let bindGroup = this.bindGroups.get(key);
    if (!bindGroup) {
      const entries: GPUBindGroupEntry[] = [{ binding: 0, resource: { buffer: this.uniformDevice, size: SLOT_BYTES } }];
      buffers.forEach((buffer, b) => entries.push({ binding: 1 + b, resource: { buffer } }));
      if (layout.uploads) entries.push({ binding: 1 + buffers.length, resource: { buffer: this.uploadDevice } });
      bindGroup = this.device.createBindGroup({ layout: variant.layout, entries });
      if (this.bindGroups.size >= MAX_BIND_GROUPS) this.bindGroups.clear();
      this.bindGroups.set(key, bindGroup);
    }
    if (!this.pass) this.pass = (this.encoder ??= this.device.createCommandEncoder()).beginComputePass();
    this.pass.setPipeline(variant.pipeline);
    this.pass.setBindGroup(0, bindGroup, [slot * SLOT_BYTES]);
    this.pass.dispatchWorkgroups(x, y, z);
    this.dispatches++;
    if (this.dispatches >= FLUSH_DISPATCHES) this.flush();
  }

  /** Frees every buffer; the engine must not be used afterwards. */
  destroy(): void {
    this.flush();
    for (const list of [...this.pool.values(), ...this.staging.values()]) for (const buffer of list) buffer.destroy();
    this.pool.clear();
    this.staging.clear();
    this.device.destroy();
  }
}
