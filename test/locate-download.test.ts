import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadTestSet, loadTrainingSet } from '../src/data/load.ts';
import { locateData } from '../src/data/locate.ts';
import { DATA_FILES } from '../src/data/manifest.ts';
import { UserError } from '../src/errors.ts';
import { REAL_DATA_DIR, tempDir } from './helpers/idx-files.ts';

function fakeDataDir(): string {
  const dir = tempDir();
  for (const file of DATA_FILES) writeFileSync(join(dir, `${file.name}.gz`), 'placeholder');
  return dir;
}

test('looks in --data-dir first, then FASHION_MNIST_DIR, then the system folder, then the cache', async () => {
  const [flag, env, system, cache] = [fakeDataDir(), fakeDataDir(), fakeDataDir(), fakeDataDir()];
  const empty = tempDir();
  const base = { download: false as const, cacheDir: cache };
  assert.deepEqual(await locateData({ ...base, dataDir: flag, env: { FASHION_MNIST_DIR: env }, systemDir: system }), { dir: flag, origin: 'flag' });
  assert.deepEqual(await locateData({ ...base, env: { FASHION_MNIST_DIR: env }, systemDir: system }), { dir: env, origin: 'env' });
  assert.deepEqual(await locateData({ ...base, env: {}, systemDir: system }), { dir: system, origin: 'debian' });
  assert.deepEqual(await locateData({ ...base, env: {}, systemDir: empty }), { dir: cache, origin: 'cache' });
  await assert.rejects(
    locateData({ download: false, env: {}, systemDir: empty, cacheDir: empty }),
    (error: unknown) => error instanceof UserError && /--data-dir.*dataset-fashion-mnist.*\.gz files into/.test(error.message),
  );
});

test('an explicit folder without the data is an error, not a silent fallback', async () => {
  const empty = tempDir();
  await assert.rejects(
    locateData({ dataDir: empty, download: false, systemDir: fakeDataDir() }),
    (error: unknown) => error instanceof UserError && error.message.includes(`--data-dir points to ${empty}, which lacks train-images-idx3-ubyte`),
  );
  await assert.rejects(
    locateData({ env: { FASHION_MNIST_DIR: empty }, download: false }),
    (error: unknown) => error instanceof UserError && error.message.startsWith('FASHION_MNIST_DIR points to'),
  );
});

/** Serves `files` (path -> bytes) on loopback and records each requested path. */
async function serve(files: Map<string, Uint8Array>): Promise<{ server: Server; baseUrl: string; requests: string[] }> {
  const requests: string[] = [];
  const server = createServer((request, response) => {
    requests.push(request.url ?? '');
    const body = files.get(request.url ?? '');
    if (!body) {
      response.writeHead(404).end();
      return;
    }
    response.writeHead(200, { 'content-length': body.length }).end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { server, baseUrl: `http://127.0.0.1:${port}/`, requests };
}

test('downloads over HTTP, rejects a corrupted file by its MD5, and keeps only verified files', async () => {
  // Real files: Debian's recompressed copies, so their MD5s stand in for the official ones.
  const files = new Map<string, Uint8Array>();
  const expectedMd5: Record<string, string> = {};
  for (const file of DATA_FILES) {
    const bytes = readFileSync(join(REAL_DATA_DIR, `${file.name}.gz`));
    files.set(`/${file.name}.gz`, bytes);
    expectedMd5[file.name] = createHash('md5').update(bytes).digest('hex');
  }
  const good = files.get('/t10k-labels-idx1-ubyte.gz')!;
  const corrupted = Uint8Array.from(good);
  corrupted[100] ^= 0xff;
  files.set('/t10k-labels-idx1-ubyte.gz', corrupted);

  const { server, baseUrl, requests } = await serve(files);
  try {
    const cacheDir = join(tempDir(), 'cache');
    const options = { env: {}, systemDir: tempDir(), cacheDir, download: { baseUrl, expectedMd5 } };
    await assert.rejects(
      locateData(options),
      (error: unknown) => error instanceof UserError && /t10k-labels-idx1-ubyte\.gz has MD5 [0-9a-f]{32}, not the published/.test(error.message),
    );
    // The three good files landed; the corrupt one left nothing behind, not even a temporary file.
    assert.deepEqual(readdirSync(cacheDir).sort(), ['t10k-images-idx3-ubyte.gz', 'train-images-idx3-ubyte.gz', 'train-labels-idx1-ubyte.gz']);

    files.set('/t10k-labels-idx1-ubyte.gz', good);
    requests.length = 0;
    assert.deepEqual(await locateData(options), { dir: cacheDir, origin: 'download' });
    assert.deepEqual(requests, ['/t10k-labels-idx1-ubyte.gz'], 'only the missing file is fetched again');
    assert.ok(loadTestSet(cacheDir).checks.every((check) => check.status === 'verified'));
    assert.equal(loadTrainingSet(cacheDir).data.count, 60_000);
    // With the cache complete, the next run finds it without the network.
    assert.deepEqual(await locateData({ ...options, download: false }), { dir: cacheDir, origin: 'cache' });
  } finally {
    server.close();
  }
});

test('without a network the error names the three ways to provide the data', async () => {
  const { server, baseUrl } = await serve(new Map());
  server.close();
  const cacheDir = join(tempDir(), 'cache');
  await assert.rejects(
    locateData({ env: {}, systemDir: tempDir(), cacheDir, download: { baseUrl, timeoutSeconds: 5 } }),
    (error: unknown) =>
      error instanceof UserError &&
      error.message.startsWith('Could not download http://127.0.0.1') &&
      error.message.includes('--data-dir DIR (or set FASHION_MNIST_DIR)') &&
      error.message.includes('dataset-fashion-mnist') &&
      error.message.includes(cacheDir),
  );
  assert.ok(!existsSync(join(cacheDir, 'train-images-idx3-ubyte.gz')));
});

test('an HTTP error status is reported', async () => {
  const { server, baseUrl } = await serve(new Map());
  try {
    await assert.rejects(
      locateData({ env: {}, systemDir: tempDir(), cacheDir: join(tempDir(), 'c'), download: { baseUrl } }),
      (error: unknown) => error instanceof UserError && /failed with HTTP 404/.test(error.message),
    );
  } finally {
    server.close();
  }
});
