import { xoroshiro128plus, xoroshiro128plusFromState } from 'pure-rand/generator/xoroshiro128plus';
import type { JumpableRandomGenerator } from 'pure-rand/types/JumpableRandomGenerator';

const TWO_TO_MINUS_32 = 2 ** -32;

/**
 * The one seeded source of randomness. Every random choice in a run (initialisation,
 * shuffling, dropout, the data split) draws from an Rng forked from the run's root,
 * so the same seed gives the same run. Never use Math.random.
 */
export class Rng {
  private generator: JumpableRandomGenerator;
  /** Second normal deviate left over from the last Box-Muller pair, or null. */
  private spareNormal: number | null = null;

  private constructor(generator: JumpableRandomGenerator) {
    this.generator = generator;
  }

  static fromSeed(seed: number): Rng {
    return new Rng(xoroshiro128plus(seed));
  }

  /** Restores a generator saved with {@link Rng.state}. */
  static fromState(state: RngState): Rng {
    const rng = new Rng(xoroshiro128plusFromState(state.generator));
    rng.spareNormal = state.spareNormal;
    return rng;
  }

  /** Puts this generator back to a saved state, in place (everyone holding it continues from there). */
  restore(state: RngState): void {
    this.generator = xoroshiro128plusFromState(state.generator);
    this.spareNormal = state.spareNormal;
  }

  /** A serialisable snapshot: a restored generator continues the same sequence. */
  state(): RngState {
    return { generator: [...this.generator.getState()], spareNormal: this.spareNormal };
  }

  /**
   * An independent child stream. The child starts at this generator's position and this
   * generator jumps 2^64 steps ahead, so the streams of successive forks never overlap.
   */
  fork(): Rng {
    const child = new Rng(this.generator.clone());
    this.generator.jump();
    return child;
  }

  /** 32 random bits, as an unsigned integer. */
  bits(): number {
    return this.generator.next() >>> 0;
  }

  /** Uniform in [0, 1), 32 bits of randomness. */
  uniform(): number {
    return (this.generator.next() >>> 0) * TWO_TO_MINUS_32;
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.uniform() * n);
  }

  /** Standard normal deviate (Box-Muller). */
  normal(): number {
    if (this.spareNormal !== null) {
      const value = this.spareNormal;
      this.spareNormal = null;
      return value;
    }
    // 1 - uniform() lies in (0, 1], so the logarithm is finite.
    const radius = Math.sqrt(-2 * Math.log(1 - this.uniform()));
    const angle = 2 * Math.PI * this.uniform();
    this.spareNormal = radius * Math.sin(angle);
    return radius * Math.cos(angle);
  }

  /** Shuffles in place (Fisher-Yates) and returns the array. */
  shuffle<T extends { length: number; [i: number]: number }>(array: T): T {
    for (let i = array.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const tmp = array[i];
      array[i] = array[j];
      array[j] = tmp;
    }
    return array;
  }
}

export interface RngState {
  generator: number[];
  spareNormal: number | null;
}
