import type { Kernels, Tensor } from '../kernels/index.ts';
import { shapeSize, type ForwardContext, type Layer, type LayerSpec, type ParameterSpec, type Shape } from './layer.ts';

/**
 * Inverted dropout: in training each element is zeroed with probability `rate` and the
 * survivors are scaled by 1 / (1 - rate), so evaluation needs no rescaling and passes the
 * input through unchanged.
 */
export class Dropout implements Layer {
  readonly spec: LayerSpec;
  readonly inputShape: Shape;
  readonly outputShape: Shape;
  readonly parameters: readonly ParameterSpec[] = [];
  private readonly size: number;
  /** The last training batch's mask, 0 or 1 / (1 - rate) per element; allocated by the first training batch. */
  private mask: Tensor | null = null;
  private masked = false;

  constructor(
    private readonly kernels: Kernels,
    inputShape: Shape,
    private readonly rate: number,
  ) {
    if (!(rate >= 0 && rate < 1)) throw new Error(`dropout rate must lie in [0, 1), got ${rate}`);
    this.spec = { type: 'dropout', rate };
    this.inputShape = inputShape;
    this.outputShape = inputShape;
    this.size = shapeSize(inputShape);
  }

  bind(): void {}

  dispose(): void {
    if (this.mask) this.kernels.release(this.mask);
    this.mask = null;
  }

  forward(out: Tensor, inp: Tensor, batch: number, context: ForwardContext): void {
    const n = batch * this.size;
    this.masked = context.training && this.rate > 0;
    if (!this.masked) {
      this.kernels.copy({ out, inp, n });
      return;
    }
    if (!this.mask || this.mask.length < n) {
      this.dispose();
      this.mask = this.kernels.allocate(n);
    }
    // The kernel draws the mask from a counter-based generator keyed by two words of the run's
    // generator (drawing it here took 24-44 us of an MLP step of about 400; the kernel takes a
    // few). Each element compares a 16-bit draw, so the keep probability is rounded to a multiple
    // of 2^-16, and the survivors are scaled by its inverse.
    const threshold = Math.max(1, Math.round((1 - this.rate) * 65536));
    // key0 is drawn before key1 (properties are evaluated in order).
    this.kernels.dropoutMask({ mask: this.mask, n, threshold, scale: 65536 / threshold, key0: context.rng.bits(), key1: context.rng.bits() });
    this.kernels.multiply({ out, a: inp, b: this.mask, n });
  }

  backward(dinp: Tensor | null, dout: Tensor, _inp: Tensor, _out: Tensor, batch: number): void {
    if (!dinp) return;
    const n = batch * this.size;
    if (this.masked) this.kernels.multiply({ out: dinp, a: dout, b: this.mask!, n });
    else this.kernels.copy({ out: dinp, inp: dout, n });
  }
}
