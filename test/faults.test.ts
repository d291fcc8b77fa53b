import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, readdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { isOneLineError, runCli, type CliResult } from './helpers/cli.ts';
import { tempDir } from './helpers/idx-files.ts';

// The MLP on 20,000 images, one thread: tenths of a second an epoch, a checkpoint of 1.6 MB.
const TRAIN = ['train', 'mlp', '--train-limit', '20000', '--epochs', '4', '--threads', '1', '--seed', '5', '--no-report'];
const CLI = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));

const reference = join(tempDir(), 'reference');
const whole = runCli([...TRAIN, '--out', reference]);
assert.equal(whole.status, 0, whole.stderr);

/** The folder's run ended with the weights and history of the run that never stopped. */
function sameAsReference(dir: string): void {
  assert.deepEqual(readFileSync(join(dir, 'model.safetensors')), readFileSync(join(reference, 'model.safetensors')));
  const withoutSeconds = (file: string) => JSON.parse(readFileSync(file, 'utf8')).map(({ seconds: _s, ...rest }: { seconds: number }) => rest);
  assert.deepEqual(withoutSeconds(join(dir, 'history.json')), withoutSeconds(join(reference, 'history.json')));
  assert.ok(!existsSync(join(dir, 'checkpoint')), 'the checkpoint is removed once the run is complete');
}

function resume(dir: string): CliResult {
  return runCli(['train', 'mlp', '--resume', dir, '--no-report']);
}

/** Starts the training run; `onEpoch(epoch, child)` hears each finished epoch. Resolves with how it ended. */
function startRun(outDir: string, onEpoch: (epoch: number, child: ReturnType<typeof spawn>) => void): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', CLI, ...TRAIN, '--out', outDir], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    let epochs = 0;
    child.stderr!.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      const finished = (stderr.match(/^epoch \d+\/4: loss/gm) ?? []).length;
      while (epochs < finished) onEpoch(++epochs, child);
    });
    child.on('exit', (code) => resolve({ code, stderr }));
  });
}

for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
  test(`${signal} during an epoch: exit ${code}, one line with the command that resumes, and the resumed run is the same`, { timeout: 120_000 }, async () => {
    const dir = join(tempDir(), 'run');
    const ended = await startRun(dir, (epoch, child) => {
      if (epoch === 1) child.kill(signal);
    });
    assert.equal(ended.code, code, ended.stderr);
    assert.ok(isOneLineError(ended.stderr), ended.stderr);
    assert.match(ended.stderr, new RegExp(`interrupted by ${signal}; the run's last checkpoint is kept, continue with: fmnist train mlp --resume ${dir}`));
    assert.ok(!existsSync(join(dir, 'metrics.json')), 'the run did not finish');
    assert.ok(existsSync(join(dir, 'checkpoint', 'checkpoint.json')));
    const resumed = resume(dir);
    assert.equal(resumed.status, 0, resumed.stderr);
    sameAsReference(dir);
  });
}

test('a second Ctrl-C quits at once', { timeout: 120_000 }, async () => {
  const ended = await startRun(join(tempDir(), 'run'), (epoch, child) => {
    if (epoch !== 1) return;
    child.kill('SIGINT');
    child.kill('SIGINT');
  });
  assert.equal(ended.code, 130, ended.stderr);
  assert.doesNotMatch(ended.stderr, /^\s+at /m);
});

/** A folder holding a run stopped after `epochs` epochs, by SIGINT. */
async function stoppedRun(epochs: number): Promise<string> {
  const dir = join(tempDir(), 'run');
  const ended = await startRun(dir, (epoch, child) => {
    if (epoch === epochs) child.kill('SIGINT');
  });
  assert.equal(ended.code, 130, ended.stderr);
  return dir;
}

test('a truncated or garbled checkpoint: --resume continues from the one before it and ends the same', { timeout: 180_000 }, async () => {
  const truncated = await stoppedRun(2);
  const latest = JSON.parse(readFileSync(join(truncated, 'checkpoint', 'checkpoint.json'), 'utf8')) as { tensors: string };
  truncateSync(join(truncated, 'checkpoint', latest.tensors), 1000);
  const fromTruncated = resume(truncated);
  assert.equal(fromTruncated.status, 0, fromTruncated.stderr);
  assert.match(fromTruncated.stderr, /continuing from the checkpoint before it/);
  sameAsReference(truncated);

  const garbled = await stoppedRun(2);
  writeFileSync(join(garbled, 'checkpoint', 'checkpoint.json'), '{"epochsDone": 2, "tens');
  const fromGarbled = resume(garbled);
  assert.equal(fromGarbled.status, 0, fromGarbled.stderr);
  sameAsReference(garbled);
});

test('a checkpoint damaged beyond its fallback is one line saying what to do, and doing it ends the same', { timeout: 180_000 }, async () => {
  const dir = await stoppedRun(2);
  for (const file of readdirSync(join(dir, 'checkpoint'))) writeFileSync(join(dir, 'checkpoint', file), 'garbage');
  const refused = resume(dir);
  assert.equal(refused.status, 1, refused.stderr);
  assert.ok(isOneLineError(refused.stderr), refused.stderr);
  assert.match(refused.stderr, /checkpoint in .* is damaged .*delete that folder/);
  rmSync(join(dir, 'checkpoint'), { recursive: true });
  const again = resume(dir);
  assert.equal(again.status, 0, again.stderr);
  sameAsReference(dir);
});

test('two runs into one folder: the second is refused in one line, the first ends as if alone; a dead holder is taken over', { timeout: 120_000 }, async () => {
  const dir = join(tempDir(), 'run');
  let second: CliResult | null = null;
  // The first run is held (SIGSTOP) while the second starts, so the second always meets it under way.
  const first = await startRun(dir, (epoch, child) => {
    if (epoch !== 1) return;
    child.kill('SIGSTOP');
    second = runCli([...TRAIN, '--out', dir]);
    child.kill('SIGCONT');
  });
  assert.equal(first.code, 0, first.stderr);
  assert.ok(second, 'the second run was started');
  const refused = second as CliResult;
  assert.equal(refused.status, 1);
  assert.ok(isOneLineError(refused.stderr), refused.stderr);
  assert.match(refused.stderr, /is in use by process \d+ .*fmnist train mlp/);
  sameAsReference(dir);

  // A lock left by a process that no longer runs is taken over, saying so.
  const stale = join(tempDir(), 'run');
  const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout;
  cpSync(join(dir), stale, { recursive: true, filter: (source) => !/\.fmnist-lock$/.test(source) });
  rmSync(join(stale, 'metrics.json'));
  writeFileSync(join(stale, '.fmnist-lock'), JSON.stringify({ pid: Number(dead), host: (await import('node:os')).hostname(), command: 'fmnist train mlp', since: 'then' }));
  const takeover = resume(stale);
  assert.equal(takeover.status, 0, takeover.stderr);
  assert.match(takeover.stderr, /no longer running; taking the lock over/);
  assert.ok(!existsSync(join(stale, '.fmnist-lock')), 'the lock is released at the end');
});

/** Whether this machine lets us mount a small tmpfs in a private namespace (unprivileged user namespaces or root). */
function canMountTmpfs(): boolean {
  const probe = spawnSync('unshare', ['--user', '--map-root-user', '--mount', 'sh', '-c', 'mount -t tmpfs -o size=64k tmpfs /mnt'], { encoding: 'utf8' });
  return probe.status === 0;
}

test('a full disk: one line naming the file, the last checkpoint kept, and --resume ends the same once there is space', { timeout: 180_000 }, (t) => {
  if (!canMountTmpfs()) {
    if (process.env.FMNIST_REQUIRE_FAULTS === '1') assert.fail('cannot mount a tmpfs in a private namespace here (unshare --user --mount)');
    t.skip('cannot mount a small tmpfs here (unshare --user --mount refused)');
    return;
  }
  // A 4 MB file system: config, split and two checkpoints of 1.6 MB fit, the third does not.
  const mountPoint = tempDir();
  const dir = join(mountPoint, 'run');
  const inner = [process.execPath, '--import', 'tsx', CLI, ...TRAIN, '--out', dir].map((word) => `'${word}'`).join(' ');
  const full = spawnSync(
    'unshare',
    ['--user', '--map-root-user', '--mount', 'sh', '-c', `mount -t tmpfs -o size=4m tmpfs '${mountPoint}' && ${inner}; status=$?; cp -a '${dir}' '${mountPoint}-copy'; exit $status`],
    { encoding: 'utf8', timeout: 120_000 },
  );
  assert.equal(full.status, 1, full.stderr);
  assert.ok(isOneLineError(full.stderr), full.stderr);
  assert.match(full.stderr, /Cannot write .*checkpoint.*: no space is left on the device \(ENOSPC\); what was saved before is kept: free some space, then continue with: fmnist train mlp --resume/);
  // The folder as the full disk left it, on a disk with space: it resumes to the same end.
  const copy = `${mountPoint}-copy`;
  const state = JSON.parse(readFileSync(join(copy, 'checkpoint', 'checkpoint.json'), 'utf8')) as { epochsDone: number };
  assert.ok(state.epochsDone >= 1, 'a whole checkpoint survived');
  assert.ok(!readdirSync(join(copy, 'checkpoint')).some((file) => file.includes('.tmp-')), 'no half-written file is left');
  const resumed = resume(copy);
  assert.equal(resumed.status, 0, resumed.stderr);
  sameAsReference(copy);
});

test('no file is written around the atomic-write helper (a scan of the sources)', () => {
  const writers = /\b(writeFileSync|appendFileSync|createWriteStream|writeSync|openSync|mkdirSync|renameSync|copyFileSync)\b/;
  const allowed = new Set(['src/io/atomic.ts', 'src/io/lock.ts']);
  const scan = (folder: string): string[] =>
    readdirSync(folder, { withFileTypes: true }).flatMap((entry) => {
      const path = join(folder, entry.name);
      if (entry.isDirectory()) return path.endsWith(join('wasm', 'assembly')) ? [] : scan(path);
      return entry.name.endsWith('.ts') && !allowed.has(path) && writers.test(readFileSync(path, 'utf8')) ? [path] : [];
    });
  assert.deepEqual(scan('src'), []);
});

test('SIGINT during a search: exit 130 and one line; the same command then finishes the search', { timeout: 180_000 }, async () => {
  const dir = join(tempDir(), 'search');
  const search = ['search', 'mlp', '--trials', '4', '--max-epochs', '6', '--train-limit', '20000', '--workers', '1', '--out', dir, '--no-report'];
  const ended = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', CLI, ...search], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      if (/\[1\/\d+\] trial/.test(stderr) && !child.killed) child.kill('SIGINT');
    });
    child.on('exit', (code) => resolve({ code, stderr }));
  });
  assert.equal(ended.code, 130, ended.stderr);
  assert.ok(isOneLineError(ended.stderr), ended.stderr);
  assert.match(ended.stderr, /interrupted by SIGINT; every result recorded so far is kept, continue with the same command/);
  const again = runCli(search);
  assert.equal(again.status, 0, again.stderr);
  assert.match(again.stdout, /best: trial \d+/);
});
