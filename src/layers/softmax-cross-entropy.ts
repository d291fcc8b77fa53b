import type { Kernels } from '../kernels/index.ts';

/**
 * Softmax followed by cross-entropy, fused: the gradient of the mean loss with respect to the
 * logits is simply (p - onehot) / batch, which is cheaper and more stable than chaining a
 * softmax layer's Jacobian with the log-loss's gradient.
 * Shapes: logits [B, classes], labels [B], probabilities [B, classes].
 */
export class SoftmaxCrossEntropy {
  /** Softmax probabilities of the last forward call. */
  probabilities: Float32Array;

  constructor(
    private readonly kernels: Kernels,
    readonly classes: number,
    /** Label smoothing ε: the target is (1 - ε)·onehot + ε / classes; 0 = plain cross-entropy. */
    readonly smoothing = 0,
  ) {
    this.probabilities = kernels.allocate(0);
  }

  /** Mean cross-entropy of the batch; keeps the probabilities for `backward`. */
  forward(logits: Float32Array, labels: Uint8Array, batch: number): number {
    const n = batch * this.classes;
    if (this.probabilities.length < n) {
      this.kernels.release(this.probabilities);
      this.probabilities = this.kernels.allocate(n);
    }
    return this.kernels.softmaxCrossEntropy({ probs: this.probabilities, logits, labels, rows: batch, cols: this.classes, smoothing: this.smoothing });
  }

  /** Gives the probabilities' buffer back to the kernels; the loss must not be used afterwards. */
  dispose(): void {
    this.kernels.release(this.probabilities);
    this.probabilities = new Float32Array(0);
  }

  /** dlogits = (p - q) / batch, q the (smoothed) one-hot labels. */
  backward(dlogits: Float32Array, labels: Uint8Array, batch: number): void {
    this.kernels.softmaxCrossEntropyBackward({ dlogits, probs: this.probabilities, labels, rows: batch, cols: this.classes, smoothing: this.smoothing });
  }
}
