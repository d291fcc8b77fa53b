import cliProgress from 'cli-progress';
import type { ProgressEvent } from '../training/fit.ts';

const percent = (fraction: number) => `${(fraction * 100).toFixed(2)}%`;

/** The line printed after each epoch, in both modes. */
function epochLine(event: Extract<ProgressEvent, { type: 'epoch-end' }>, epochs: number): string {
  const r = event.record;
  return (
    `epoch ${r.epoch}/${epochs}: loss ${r.trainLoss.toFixed(4)} acc ${percent(r.trainAccuracy)}` +
    ` | val loss ${r.valLoss.toFixed(4)} val acc ${percent(r.valAccuracy)}` +
    ` | lr ${r.learningRate.toExponential(2)} | ${r.seconds.toFixed(1)} s${event.improved ? ' *' : ''}`
  );
}

/**
 * Shows training progress on `stream`: a bar with ETA when it is a terminal, otherwise a
 * plain line every `intervalSeconds` and one per epoch (for logs and CI).
 */
export function progressReporter(
  stream: NodeJS.WriteStream = process.stderr,
  intervalSeconds = 10,
): (event: ProgressEvent) => void {
  let epochs = 0;
  if (stream.isTTY) {
    const bar = new cliProgress.SingleBar(
      {
        stream,
        format: 'epoch {epoch}/{epochs} [{bar}] {percentage}% | ETA {eta_formatted} | loss {loss} acc {accuracy}',
        hideCursor: true,
        clearOnComplete: true,
        etaBuffer: 50,
      },
      cliProgress.Presets.shades_classic,
    );
    return (event) => {
      if (event.type === 'epoch-start') {
        epochs = event.epochs;
        bar.start(event.batches, 0, { epoch: event.epoch, epochs, loss: '-', accuracy: '-' });
      } else if (event.type === 'batch') {
        bar.update(event.batch, { loss: event.loss.toFixed(4), accuracy: percent(event.accuracy) });
      } else {
        bar.stop();
        stream.write(`${epochLine(event, epochs)}\n`);
      }
    };
  }
  let lastLine = 0;
  return (event) => {
    if (event.type === 'epoch-start') {
      epochs = event.epochs;
      lastLine = performance.now();
    } else if (event.type === 'batch') {
      if (performance.now() - lastLine < intervalSeconds * 1000) return;
      lastLine = performance.now();
      stream.write(
        `epoch ${event.epoch}/${epochs}: batch ${event.batch}/${event.batches} loss ${event.loss.toFixed(4)} acc ${percent(event.accuracy)}\n`,
      );
    } else {
      stream.write(`${epochLine(event, epochs)}\n`);
    }
  };
}
