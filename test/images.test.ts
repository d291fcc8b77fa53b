import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
import { decodeImage, fashionImage, ImageError, imageSize } from '../src/inference/images.ts';
import { asFashionMnist, axisWeights, toFashionMnist, type RgbaImage } from '../src/inference/preprocess.ts';

/** A width x height RGBA image of `background`, with a filled rectangle of `colour` at (x, y, w, h). */
function rectangle(width: number, height: number, background: number[], colour: number[], box: [number, number, number, number]): RgbaImage {
  const data = new Uint8Array(width * height * 4);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const inside = x >= box[0] && x < box[0] + box[2] && y >= box[1] && y < box[1] + box[3];
      data.set(inside ? colour : background, (y * width + x) * 4);
    }
  }
  return { width, height, data };
}

/** The rectangle [x, y, w, h] of the non-zero pixels of a 28x28 image. */
function nonZeroBox(pixels: Uint8Array): [number, number, number, number] {
  let left = 28;
  let right = -1;
  let top = 28;
  let bottom = -1;
  for (let y = 0; y < 28; y++) {
    for (let x = 0; x < 28; x++) {
      if (pixels[y * 28 + x] === 0) continue;
      left = Math.min(left, x);
      right = Math.max(right, x);
      top = Math.min(top, y);
      bottom = Math.max(bottom, y);
    }
  }
  return [left, top, right - left + 1, bottom - top + 1];
}

const encodePng = (image: RgbaImage) => PNG.sync.write(Object.assign(new PNG({ width: image.width, height: image.height }), { data: Buffer.from(image.data) }));

describe('preprocessing to Fashion-MNIST form', () => {
  test('a light object on black: cropped, its longest side fitted to 28, centred, not inverted', () => {
    // A 10x20 rectangle of 200 at (5, 3) in a 40x30 black image: fitted to 14x28, centred at x 7..20.
    const result = toFashionMnist(rectangle(40, 30, [0, 0, 0, 255], [200, 200, 200, 255], [5, 3, 10, 20]));
    assert.equal(result.inverted, false);
    assert.deepEqual(nonZeroBox(result.pixels), [7, 0, 14, 28]);
    assert.ok(result.pixels.every((value) => value === 0 || value === 200), 'the inside keeps its value, the background is 0');
  });

  test('a dark coloured object on white (a product photo): inverted, the same shape, the background 0', () => {
    const photo = toFashionMnist(rectangle(300, 200, [255, 255, 255, 255], [20, 40, 120, 255], [100, 20, 60, 120]));
    assert.equal(photo.inverted, true);
    assert.deepEqual(nonZeroBox(photo.pixels), [7, 0, 14, 28]);
    // luma of (20, 40, 120) is 43.3: 255 - 43.3 ≈ 212 on the stretched scale (the background is pure white).
    const inside = photo.pixels[14 * 28 + 14];
    assert.ok(Math.abs(inside - 212) <= 1, `inside ${inside}`);
  });

  test('a transparent background counts as white; a landscape object is centred vertically', () => {
    const image = rectangle(50, 50, [0, 0, 0, 0], [30, 30, 30, 255], [5, 20, 40, 10]);
    const result = toFashionMnist(image);
    assert.equal(result.inverted, true);
    // 40x10 -> 28x7, rows (28 - 7) >> 1 = 10 .. 16.
    assert.deepEqual(nonZeroBox(result.pixels), [0, 10, 28, 7]);
  });

  test('an image already in Fashion-MNIST form whose object spans the frame is unchanged', () => {
    const image = rectangle(28, 28, [0, 0, 0, 255], [0, 0, 0, 255], [0, 0, 0, 0]);
    // A garment-like pattern touching the top and bottom edges, 20 columns wide, centred at 4..23.
    for (let y = 0; y < 28; y++) for (let x = 4; x < 24; x++) image.data.fill(50 + ((x * 7 + y * 3) % 200), (y * 28 + x) * 4, (y * 28 + x) * 4 + 3);
    const result = toFashionMnist(image);
    assert.deepEqual(result.pixels, asFashionMnist(image).pixels);
  });

  test('a blank image stays blank', () => {
    const result = toFashionMnist(rectangle(10, 10, [255, 255, 255, 255], [0, 0, 0, 255], [0, 0, 0, 0]));
    assert.ok(result.pixels.every((value) => value === 0));
  });

  test('resampling weights: each output pixel sums to 1; the same size copies', () => {
    for (const [source, target] of [[200, 28], [29, 28], [7, 28], [1, 28], [28, 1], [28, 28]]) {
      for (const { weights } of axisWeights(source, target)) {
        assert.ok(Math.abs(weights.reduce((a, b) => a + b, 0) - 1) < 1e-9, `${source} -> ${target}`);
      }
    }
    assert.deepEqual(axisWeights(5, 5).map(({ first, weights }) => [first, weights[0]]), [[0, 1], [1, 1], [2, 1], [3, 1], [3, 0]]);
  });

  test('without preprocessing only 28x28 images are taken', () => {
    assert.throws(() => asFashionMnist(rectangle(30, 28, [0, 0, 0, 255], [0, 0, 0, 255], [0, 0, 0, 0])), /30x28; without preprocessing it must be 28x28/);
  });
});

describe('decoding PNG and JPEG', () => {
  const image = rectangle(64, 48, [255, 255, 255, 255], [90, 10, 10, 255], [10, 8, 30, 30]);
  const png = encodePng(image);
  const jpg = jpeg.encode({ width: 64, height: 48, data: image.data }, 95).data;

  test('PNG and JPEG decode to the same RGBA (JPEG within its loss) and the same Fashion-MNIST image', () => {
    const fromPng = decodeImage(png);
    const fromJpeg = decodeImage(jpg);
    assert.deepEqual([fromPng.width, fromPng.height, fromJpeg.width, fromJpeg.height], [64, 48, 64, 48]);
    assert.deepEqual(Buffer.from(fromPng.data), Buffer.from(image.data));
    const a = fashionImage(png).pixels;
    const b = fashionImage(jpg).pixels;
    const worst = Math.max(...a.map((value, i) => Math.abs(value - b[i])));
    assert.ok(worst <= 40, `largest difference ${worst}`);
    assert.deepEqual(nonZeroBox(a), nonZeroBox(b));
  });

  test('grayscale and palette PNGs decode', () => {
    const gray = PNG.sync.write(Object.assign(new PNG({ width: 64, height: 48 }), { data: Buffer.from(image.data) }), { colorType: 0 });
    assert.equal(decodeImage(gray).width, 64);
    assert.equal(fashionImage(gray).inverted, true);
  });

  test('sizes come from the header before decoding', () => {
    assert.deepEqual(imageSize(png), { format: 'png', width: 64, height: 48 });
    assert.deepEqual(imageSize(jpg), { format: 'jpeg', width: 64, height: 48 });
  });

  const failures: [string, Uint8Array, ImageError['reason'], RegExp][] = [
    ['empty', new Uint8Array(0), 'corrupt', /empty/],
    ['truncated PNG', png.subarray(0, png.length >> 1), 'corrupt', /not a valid PNG/],
    ['PNG cut inside its header', png.subarray(0, 20), 'corrupt', /not a valid PNG/],
    ['truncated JPEG', jpg.subarray(0, jpg.length >> 1), 'corrupt', /not a valid JPEG/],
    ['JPEG cut before its frame', jpg.subarray(0, 10), 'corrupt', /not a valid JPEG/],
    ['GIF', Buffer.from('GIF89a\x01\x00\x01\x00\x00\x00\x00;', 'latin1'), 'unsupported', /not a PNG or JPEG/],
    ['text', Buffer.from('hello'), 'unsupported', /not a PNG or JPEG/],
  ];
  for (const [name, bytes, reason, message] of failures) {
    test(`${name}: ${reason}`, () => {
      assert.throws(() => decodeImage(bytes), (error: unknown) => error instanceof ImageError && error.reason === reason && message.test(error.message));
    });
  }

  /** The PNG with its IHDR's width and height replaced (the CRC is not checked before the size is). */
  function pngClaiming(width: number, height: number): Uint8Array {
    const copy = Uint8Array.from(png);
    const view = new DataView(copy.buffer);
    view.setUint32(16, width);
    view.setUint32(20, height);
    return copy;
  }

  test('a zero-size image is corrupt, a huge one too large, refused from the header alone', () => {
    assert.throws(() => decodeImage(pngClaiming(0, 48)), (error: unknown) => error instanceof ImageError && error.reason === 'corrupt' && /0x48/.test(error.message));
    assert.throws(() => decodeImage(pngClaiming(100_000, 100_000)), (error: unknown) => error instanceof ImageError && error.reason === 'too-large' && /10000\.0 megapixels/.test(error.message));
    assert.throws(() => decodeImage(png, { maxPixels: 1000 }), (error: unknown) => error instanceof ImageError && error.reason === 'too-large');
  });
});
