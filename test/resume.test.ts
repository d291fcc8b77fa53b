import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { runCli } from './helpers/cli.ts';
import { tempDir } from './helpers/idx-files.ts';

// A small CNN: a few seconds an epoch, so the kill lands inside an epoch.
const TRAIN = ['train', 'cnn', '--train-limit', '3000', '--epochs', '3', '--channels', '4,4,8,8,8', '--features', '16', '--augment-shift', '2', '--augment-flip', '--seed', '9'];
const CLI = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));

/** Starts a training run and kills it (SIGKILL: no chance to clean up) once epoch `epoch` has begun. */
function trainAndKill(outDir: string, epoch: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', CLI, ...TRAIN, '--out', outDir], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      // The line for epoch `epoch - 1` is printed once its checkpoint is written; the next epoch is under way.
      if (stderr.includes(`epoch ${epoch - 1}/3: loss`) && child.exitCode === null && !child.killed) {
        setTimeout(() => child.kill('SIGKILL'), 300);
      }
    });
    child.on('exit', (code, signal) => (signal === 'SIGKILL' ? resolve() : reject(new Error(`the run ended by itself (${code}): ${stderr}`))));
  });
}

test('a CNN run killed mid-epoch resumes from its checkpoint and ends with the same weights', { timeout: 240_000 }, async () => {
  const whole = join(tempDir(), 'whole');
  const uninterrupted = runCli([...TRAIN, '--out', whole]);
  assert.equal(uninterrupted.status, 0, uninterrupted.stderr);

  const killed = join(tempDir(), 'killed');
  await trainAndKill(killed, 2);
  assert.ok(!existsSync(join(killed, 'metrics.json')), 'the killed run did not finish');
  const checkpoint = JSON.parse(readFileSync(join(killed, 'checkpoint', 'checkpoint.json'), 'utf8'));
  assert.equal(checkpoint.epochsDone, 1, 'the checkpoint of epoch 1 survived the kill');

  const resumed = runCli(['train', 'cnn', '--resume', killed]);
  assert.equal(resumed.status, 0, resumed.stderr);
  assert.deepEqual(readFileSync(join(killed, 'model.safetensors')), readFileSync(join(whole, 'model.safetensors')));
  const seconds = (file: string) => JSON.parse(readFileSync(file, 'utf8')).map(({ seconds: _s, ...rest }: { seconds: number }) => rest);
  assert.deepEqual(seconds(join(killed, 'history.json')), seconds(join(whole, 'history.json')));
  assert.ok(!existsSync(join(killed, 'checkpoint')), 'the checkpoint is removed once the run is complete');
});

test('a folder that holds a run is not overwritten without --resume, and --resume needs a run', () => {
  const dir = join(tempDir(), 'run');
  assert.equal(runCli(['train', 'mlp', '--train-limit', '500', '--epochs', '1', '--out', dir]).status, 0);
  const again = runCli(['train', 'mlp', '--out', dir]);
  assert.equal(again.status, 1);
  assert.match(again.stderr, /already holds a run; pass --resume/);
  const nothing = runCli(['train', 'mlp', '--resume', tempDir()]);
  assert.equal(nothing.status, 1);
  assert.match(nothing.stderr, /holds no run to resume/);
});
