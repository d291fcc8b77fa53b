import type { Examples } from '../data/dataset.ts';
import { identityOrder } from '../data/dataset.ts';
import { TrainingDiverged } from '../errors.ts';
import { evaluate } from '../evaluation/predict.ts';
import type { Kernels } from '../kernels/index.ts';
import { SoftmaxCrossEntropy } from '../layers/softmax-cross-entropy.ts';
import type { Sequential } from '../models/sequential.ts';
import type { Rng, RngState } from '../random/rng.ts';
import type { Optimizer, OptimizerState } from './optimizers.ts';
import { learningRateAt, type Schedule } from './schedules.ts';

/** One epoch's figures, as written to history.json. */
export interface EpochRecord {
  epoch: number;
  trainLoss: number;
  trainAccuracy: number;
  valLoss: number;
  valAccuracy: number;
  /** Learning rate at the epoch's last step. */
  learningRate: number;
  /** Wall-clock seconds of the epoch, validation included. */
  seconds: number;
  /** Changes of the peak learning rate made while the epoch trained (see TrainingControl); absent where there were none. */
  learningRateChanges?: LearningRateChange[];
}

/** A change of the peak learning rate (the value the schedule scales, `--lr`) while training runs. */
export interface LearningRateChange {
  /** The epoch's batch (1-based) whose step was the first to use it. */
  batch: number;
  /** Where that is on the curves: epochs since the start, fractional (1.5: halfway through the second). */
  at: number;
  peakLearningRate: number;
}

/**
 * What may change while training runs (the web app's learning-rate field): fit reads it before
 * every step. A change is applied from the next step on and kept in the epoch's record, so that
 * history.json says what the run did; a resumed run continues with the last change its finished
 * epochs recorded.
 */
export interface TrainingControl {
  /** The peak learning rate wanted from the next step on; undefined keeps the current one. */
  learningRate?: number;
  /** Hears of each change as it is applied, with the epoch it falls in. */
  onChange?: (change: LearningRateChange & { epoch: number }) => void;
}

export type ProgressEvent =
  | { type: 'epoch-start'; epoch: number; epochs: number; batches: number }
  | { type: 'batch'; epoch: number; batch: number; batches: number; loss: number; accuracy: number }
  | { type: 'epoch-end'; record: EpochRecord; improved: boolean };

export interface FitOptions {
  kernels: Kernels;
  model: Sequential;
  loss: SoftmaxCrossEntropy;
  optimizer: Optimizer;
  train: Examples;
  validation: Examples;
  epochs: number;
  batchSize: number;
  learningRate: number;
  schedule: Schedule;
  /** Stop after this many epochs without a better validation accuracy; 0 never stops early. */
  patience: number;
  /** Shuffles the training examples each epoch. */
  shuffleRng: Rng;
  /** Drives dropout. */
  dropoutRng: Rng;
  /** Other generators the training draws from (augmentation), saved in checkpoints too. */
  otherRngs?: Rng[];
  onProgress?: (event: ProgressEvent) => void;
  /** Saves the state after every epoch, and supplies a saved one to continue from. */
  checkpoint?: Checkpointer;
  /**
   * Return after this epoch even though `epochs` are planned (the schedule still spans all of
   * them): a hyperparameter search trains a trial in stages, resuming from the checkpoint.
   */
  stopAfterEpoch?: number;
  /**
   * Stops the training between two batches when aborted, throwing the signal's reason: the
   * epoch under way is abandoned and the checkpoint of the last finished one is what remains.
   */
  signal?: AbortSignal;
  /**
   * Keep an exponential moving average of the weights with this decay (ramped up as
   * min(decay, (1 + t) / (10 + t)) over the first steps t); validation and the weights kept are
   * the average's. 0 or absent: none.
   */
  emaDecay?: number;
  /**
   * Lookahead: every this many steps, and after an epoch's last step, the slow weights move
   * toward the trained ones, slow = d·slow + (1 - d)·trained with d = 0.95^k·(t / T)³ (step t of
   * T: no pull at first, 0.95^k at the end, as airbench ramps it), and training continues from
   * the slow weights. 0 or absent: none. The epoch ends synchronised, so checkpoints need
   * nothing more.
   */
  lookahead?: number;
  /**
   * A snapshot ensemble in one model: in each of the last this many epochs, what is validated
   * (and kept where best) is the mean of the weights (the moving average's, where there is one)
   * at the end of each of those epochs so far. 0, 1 or absent: none.
   */
  averageEpochs?: number;
  /** Each parameter tensor's learning rate as a multiple of the schedule's (0: frozen); absent: 1 for all. */
  learningRateScales?: readonly number[];
  /** Validate each image and its mirror image, the examples being images of this shape, averaging the probabilities (see evaluate). */
  validationFlip?: readonly number[] | null;
  /** Changes made while training runs; see TrainingControl. */
  control?: TrainingControl;
}

/** The peak learning rate in effect after `history`: the last change its epochs recorded, else `initial`. */
function peakAfter(history: readonly EpochRecord[], initial: number): number {
  for (let e = history.length - 1; e >= 0; e--) {
    const changes = history[e].learningRateChanges;
    if (changes && changes.length > 0) return changes[changes.length - 1].peakLearningRate;
  }
  return initial;
}

/** Training gives the event loop a turn this often, so that a signal (Ctrl-C) is heard within it. */
const YIELD_MILLISECONDS = 50;

/**
 * A turn of the event loop: setImmediate in Node; in a browser's worker a message to itself,
 * since a zero timeout set from a timeout's callback waits at least 4 ms from the fifth on (the
 * HTML timers' clamp): up to 8% of the training at one turn every 50 ms.
 */
const nextTurn = () =>
  new Promise<void>((resolve) => {
    if (typeof setImmediate === 'function') {
      setImmediate(resolve);
      return;
    }
    const channel = new MessageChannel();
    channel.port1.onmessage = () => {
      channel.port1.close();
      resolve();
    };
    channel.port2.postMessage(null);
  });

/** Everything needed to continue training after `epochsDone` epochs exactly as if never stopped. */
export interface FitState {
  epochsDone: number;
  values: Float32Array;
  bestValues: Float32Array;
  bestEpoch: number;
  bestAccuracy: number;
  optimizer: OptimizerState;
  /** shuffle, dropout, then otherRngs, in order. */
  rngs: RngState[];
  /** The order of the training examples after the last shuffle (each epoch shuffles it again). */
  order: Int32Array;
  history: EpochRecord[];
  /** The moving average of the weights and the steps it has seen, when there is one. */
  average?: { values: Float32Array; steps: number };
  /** The mean of the epochs' weights averaged so far (averageEpochs) and how many, once there is one. */
  snapshots?: { values: Float32Array; count: number };
}

export interface Checkpointer {
  load(): FitState | null;
  save(state: FitState): void;
}

export interface FitResult {
  history: EpochRecord[];
  /** 1-based epoch whose weights the model holds at the end (best validation accuracy). */
  bestEpoch: number;
  stoppedEarly: boolean;
  /** Best validation accuracy so far. */
  bestAccuracy: number;
  /** Stopped at `stopAfterEpoch` with epochs left to train. */
  paused: boolean;
}

/** How often a backend whose reads wait for a device (a GPU) reads the epoch's figures: the other backends read every batch. */
const DEVICE_READ_MILLISECONDS = 250;

/**
 * Mini-batch training with a seeded shuffle each epoch, validation after each epoch and
 * early stopping that restores the weights of the best validation accuracy.
 *
 * Everything a step touches stays where the kernels run: each example's loss and predicted
 * class are written into tensors of the epoch, and the host reads them for the figures a person
 * sees (every batch on the CPU backends, where a read costs nothing; every 250 ms or so on a
 * GPU), the weights when a checkpoint is saved.
 */
export async function fit(options: FitOptions): Promise<FitResult> {
  const { kernels, model, loss, optimizer, train, validation, epochs, batchSize } = options;
  const classes = model.outputSize;
  const parameters = model.values.length;
  const batches = Math.ceil(train.count / batchSize);
  const input = kernels.allocate(batchSize * train.featureSize);
  // Each training example's loss and predicted class, at its place in the epoch's order.
  const losses = kernels.allocate(train.count);
  const predicted = kernels.allocate(train.count);
  const labels = new Int32Array(batchSize);
  const order = identityOrder(train.count);
  const context = { training: true, rng: options.dropoutRng };
  const rngs = [options.shuffleRng, options.dropoutRng, ...(options.otherRngs ?? [])];
  const bestValues = kernels.allocate(parameters);
  kernels.copy({ out: bestValues, inp: model.values, n: parameters });
  // The training loss may smooth its labels; validation measures the plain cross-entropy.
  const validationLoss = loss.smoothing > 0 ? new SoftmaxCrossEntropy(kernels, loss.classes) : loss;
  const emaDecay = options.emaDecay ?? 0;
  const average = emaDecay > 0 ? { values: kernels.allocate(parameters), steps: 0 } : null;
  if (average) kernels.copy({ out: average.values, inp: model.values, n: parameters });
  const lookahead = options.lookahead ?? 0;
  const slow = lookahead > 0 ? kernels.allocate(parameters) : null;
  const averageEpochs = options.averageEpochs ?? 0;
  const snapshots = averageEpochs > 1 ? { values: kernels.allocate(parameters), count: 0 } : null;
  // Weights set aside while others are validated.
  const live = average || snapshots ? kernels.allocate(parameters) : null;
  let history: EpochRecord[] = [];
  let bestEpoch = 0;
  let bestAccuracy = -1;
  let firstEpoch = 1;

  try {
    const saved = options.checkpoint?.load() ?? null;
    if (saved) {
      model.writeValues(saved.values);
      kernels.write(bestValues, saved.bestValues);
      bestEpoch = saved.bestEpoch;
      bestAccuracy = saved.bestAccuracy;
      optimizer.restore(saved.optimizer);
      saved.rngs.forEach((state, i) => rngs[i].restore(state));
      order.set(saved.order);
      history = [...saved.history];
      if (average) {
        if (!saved.average) throw new Error('the checkpoint holds no moving average of the weights, which this run keeps');
        kernels.write(average.values, saved.average.values);
        average.steps = saved.average.steps;
      }
      if (snapshots && saved.snapshots) {
        kernels.write(snapshots.values, saved.snapshots.values);
        snapshots.count = saved.snapshots.count;
      }
      firstEpoch = saved.epochsDone + 1;
      if (options.patience > 0 && saved.epochsDone - bestEpoch >= options.patience) firstEpoch = epochs + 1;
    }

    // An epoch ends with the slow weights and the trained ones the same, a resumed one included.
    if (slow) kernels.copy({ out: slow, inp: model.values, n: parameters });
    const lastEpoch = Math.min(epochs, options.stopAfterEpoch ?? epochs);
    let peak = peakAfter(history, options.learningRate);
    const readEveryBatch = kernels.device === 'cpu';
    let lastTurn = performance.now();
    for (let epoch = firstEpoch; epoch <= lastEpoch; epoch++) {
      const started = performance.now();
      options.onProgress?.({ type: 'epoch-start', epoch, epochs, batches });
      options.shuffleRng.shuffle(order);
      const figures = { lossSum: 0, correct: 0, read: 0 };
      let seen = 0;
      let lastRead = performance.now();
      // Adds the losses and predictions of examples [figures.read, seen) to the epoch's figures,
      // throwing at the first batch whose loss is not finite.
      const tally = async (): Promise<void> => {
        const [batchLosses, batchPredicted] = await Promise.all([kernels.read(losses.subarray(figures.read, seen)), kernels.read(predicted.subarray(figures.read, seen))]);
        for (let i = 0; i < batchLosses.length; i++) {
          const example = figures.read + i;
          if (!Number.isFinite(batchLosses[i])) {
            const b = Math.floor(example / batchSize);
            const rows = batchLosses.subarray(b * batchSize - figures.read, Math.min(seen, (b + 1) * batchSize) - figures.read);
            throw new TrainingDiverged(epoch, b + 1, rows.reduce((sum, value) => sum + value, 0) / rows.length);
          }
          figures.lossSum += batchLosses[i];
          if (batchPredicted[i] === train.labels[order[example]]) figures.correct++;
        }
        figures.read = seen;
        lastRead = performance.now();
        options.onProgress?.({ type: 'batch', epoch, batch: Math.ceil(seen / batchSize), batches, loss: figures.lossSum / seen, accuracy: figures.correct / seen });
      };
      let learningRate = options.learningRate;
      const changes: LearningRateChange[] = [];
      for (let b = 0; b < batches; b++) {
        if (performance.now() - lastTurn > YIELD_MILLISECONDS) {
          await nextTurn();
          lastTurn = performance.now();
        }
        options.signal?.throwIfAborted();
        const start = b * batchSize;
        const batch = Math.min(batchSize, train.count - start);
        train.gather(input, order, start, batch, kernels, epoch);
        for (let i = 0; i < batch; i++) labels[i] = train.labels[order[start + i]];
        const batchLabels = labels.subarray(0, batch);

        const logits = model.forward(input, batch, context);
        loss.forward(logits, batchLabels, batch, losses.subarray(start, start + batch));
        kernels.argmaxRows({ out: predicted.subarray(start, start + batch), inp: logits, rows: batch, cols: classes });
        model.zeroGrad();
        loss.backward(model.outputGradient, batchLabels, batch);
        model.backward(batch);
        const wanted = options.control?.learningRate;
        if (wanted !== undefined && wanted !== peak) {
          peak = wanted;
          const change = { batch: b + 1, at: epoch - 1 + b / batches, peakLearningRate: peak };
          changes.push(change);
          options.control?.onChange?.({ ...change, epoch });
        }
        learningRate = learningRateAt(options.schedule, peak, epoch - 1 + b / batches, epochs);
        optimizer.step(model.parameters, learningRate, options.learningRateScales);
        if (slow && ((b + 1) % lookahead === 0 || b === batches - 1)) {
          const progress = ((epoch - 1) * batches + b + 1) / (epochs * batches);
          kernels.emaUpdate({ average: slow, values: model.values, n: parameters, decay: 0.95 ** lookahead * progress ** 3 });
          kernels.copy({ out: model.values, inp: slow, n: parameters });
        }
        if (average) {
          average.steps++;
          const decay = Math.min(emaDecay, (1 + average.steps) / (10 + average.steps));
          kernels.emaUpdate({ average: average.values, values: model.values, n: parameters, decay });
        }
        seen += batch;
        if (readEveryBatch || performance.now() - lastRead > DEVICE_READ_MILLISECONDS) await tally();
      }
      if (figures.read < seen) await tally();

      // The weights validated (and kept where best): the moving average's where there is one, and
      // in the last averageEpochs epochs the mean of theirs at the end of each of those epochs.
      let validated = average ? average.values : model.values;
      if (snapshots && epoch > epochs - averageEpochs) {
        snapshots.count++;
        if (snapshots.count === 1) kernels.copy({ out: snapshots.values, inp: validated, n: parameters });
        else kernels.emaUpdate({ average: snapshots.values, values: validated, n: parameters, decay: (snapshots.count - 1) / snapshots.count });
        validated = snapshots.values;
      }
      if (live && validated !== model.values) {
        kernels.copy({ out: live, inp: model.values, n: parameters });
        kernels.copy({ out: model.values, inp: validated, n: parameters });
      }
      const validationResult = await evaluate(kernels, model, validationLoss, validation, undefined, options.validationFlip);
      if (live && validated !== model.values) kernels.copy({ out: model.values, inp: live, n: parameters });
      const record: EpochRecord = {
        epoch,
        trainLoss: figures.lossSum / seen,
        trainAccuracy: figures.correct / seen,
        valLoss: validationResult.loss,
        valAccuracy: validationResult.accuracy,
        learningRate,
        seconds: (performance.now() - started) / 1000,
        ...(changes.length > 0 ? { learningRateChanges: changes } : {}),
      };
      history.push(record);
      const improved = record.valAccuracy > bestAccuracy;
      if (improved) {
        bestAccuracy = record.valAccuracy;
        bestEpoch = epoch;
        kernels.copy({ out: bestValues, inp: validated, n: parameters });
      }
      options.onProgress?.({ type: 'epoch-end', record, improved });
      if (options.checkpoint) {
        options.checkpoint.save({
          epochsDone: epoch,
          values: await model.readValues(),
          bestValues: await kernels.read(bestValues),
          bestEpoch,
          bestAccuracy,
          optimizer: await optimizer.state(),
          rngs: rngs.map((rng) => rng.state()),
          order,
          history,
          ...(average ? { average: { values: await kernels.read(average.values), steps: average.steps } } : {}),
          ...(snapshots && snapshots.count > 0 ? { snapshots: { values: await kernels.read(snapshots.values), count: snapshots.count } } : {}),
        });
      }
      if (options.patience > 0 && epoch - bestEpoch >= options.patience) break;
    }
    kernels.copy({ out: model.values, inp: bestValues, n: parameters });
    // Only early stopping ends the loop before the last epoch asked for, here or before a resume.
    const stoppedEarly = history.length < lastEpoch || (history.length < epochs && options.patience > 0 && history.length - bestEpoch >= options.patience);
    return { history, bestEpoch, bestAccuracy, stoppedEarly, paused: !stoppedEarly && history.length < epochs };
  } finally {
    for (const tensor of [input, losses, predicted, bestValues, average?.values, slow, snapshots?.values, live]) if (tensor) kernels.release(tensor);
    if (validationLoss !== loss) validationLoss.dispose();
  }
}
