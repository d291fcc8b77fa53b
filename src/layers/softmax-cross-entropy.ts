import type { Kernels, Tensor } from '../kernels/index.ts';

/**
 * Softmax followed by cross-entropy, fused: the gradient of the mean loss with respect to the
 * logits is simply (p - onehot) / batch, which is cheaper and more stable than chaining a
 * softmax layer's Jacobian with the log-loss's gradient.
 * Shapes: logits [B, classes], labels [B] (class indices), probabilities [B, classes], losses [B].
 */
export class SoftmaxCrossEntropy {
  private buffer: Tensor | null = null;

  constructor(
    private readonly kernels: Kernels,
    readonly classes: number,
    /** Label smoothing ε: the target is (1 - ε)·onehot + ε / classes; 0 = plain cross-entropy. */
    readonly smoothing = 0,
  ) {}

  /** Softmax probabilities of the last forward call ([batch, classes] at its start). */
  get probabilities(): Tensor {
    if (!this.buffer) throw new Error('the loss has no probabilities before its first forward call');
    return this.buffer;
  }

  /**
   * Writes each example's loss into `losses` ([batch] at its start; the mean loss of the batch
   * is their mean) and keeps the probabilities for `backward`. The losses stay where the
   * kernels run: read them when a person is to see them, not every step.
   */
  forward(logits: Tensor, labels: Int32Array, batch: number, losses: Tensor): void {
    const n = batch * this.classes;
    if (!this.buffer || this.buffer.length < n) {
      if (this.buffer) this.kernels.release(this.buffer);
      this.buffer = this.kernels.allocate(n);
    }
    this.kernels.softmaxCrossEntropy({ probs: this.buffer, losses, logits, labels, rows: batch, cols: this.classes, smoothing: this.smoothing });
  }

  /** Gives the probabilities' buffer back to the kernels; the loss must not be used afterwards. */
  dispose(): void {
    if (this.buffer) this.kernels.release(this.buffer);
    this.buffer = null;
  }

  /** dlogits = (p - q) / batch, q the (smoothed) one-hot labels. */
  backward(dlogits: Tensor, labels: Int32Array, batch: number): void {
    this.kernels.softmaxCrossEntropyBackward({ dlogits, probs: this.probabilities, labels, rows: batch, cols: this.classes, smoothing: this.smoothing });
  }
}
