/**
 * The Try tab: a drawing, a photo, the camera's picture or a test image, brought to
 * Fashion-MNIST's form as `fmnist predict` brings a picture (src/inference/preprocess.ts), and
 * each loaded model's probabilities as bars, updated as you draw or as the camera's picture
 * changes. The image goes to the Inside tab too.
 */
import { PIXELS } from '../src/data/idx.ts';
import { CLASS_NAMES } from '../src/data/manifest.ts';
import { argmax } from '../src/evaluation/predict.ts';
import { Rng } from '../src/random/rng.ts';
import { ProbabilityBars, type ProbabilityRow } from './charts.ts';
import { byId, drawImage, element, percent } from './dom.ts';
import { toFashionMnist } from '../src/inference/preprocess.ts';
import type { AppState } from './state.ts';

/** Stroke width on the 280x280 canvas: about two of the 28 pixels, like the garments' edges. */
const STROKE = 18;
/** Photos are drawn at most this large before preprocessing: enough for 28x28, quick to scan. */
const PHOTO_SIDE = 560;
/** The camera's centre square is taken at this size (enough for 28x28) ... */
const CAMERA_SIDE = 224;
/** ... and classified again this long after the last answer came. */
const CAMERA_MILLISECONDS = 150;

export class TryTab {
  private readonly canvas = byId<HTMLCanvasElement>('draw');
  private readonly context: CanvasRenderingContext2D;
  private readonly preview = byId<HTMLCanvasElement>('preview');
  private readonly note = byId('preview-note');
  private readonly bars: ProbabilityBars;
  /** The image the models see now, or null before anything is drawn. */
  private pixels: Uint8Array | null = null;
  /** Updates started, so that only the latest one's answers are shown. */
  private updates = 0;
  /** A test image's true class, shown beside it; null for drawings and photos. */
  private truth: number | null = null;
  private scheduled = false;
  /** Which test image "Random test image" shows next: a seeded sequence, the same on every visit. */
  private readonly rng = Rng.fromSeed(2024);
  /** What the image is, for the Inside tab's sentence. */
  private what = 'Your drawing';
  private readonly video = byId<HTMLVideoElement>('camera');
  private readonly cameraButton = byId<HTMLButtonElement>('camera-button');
  /** The camera while it is on: its stream and the frame it classifies. */
  private camera: { stream: MediaStream; frame: HTMLCanvasElement } | null = null;

  constructor(private readonly state: AppState) {
    const context = this.canvas.getContext('2d', { willReadFrequently: true });
    if (context === null) throw new Error('this browser gives no 2D canvas');
    this.context = context;
    this.bars = new ProbabilityBars(byId('bars'), CLASS_NAMES);
    this.clear();
    this.listenForDrawing();
    this.cameraButton.addEventListener('click', () => void (this.camera ? this.stopCamera() : this.startCamera()));
    byId('clear-button').addEventListener('click', () => {
      this.stopCamera();
      this.clear();
      this.pixels = null;
      this.truth = null;
      void this.update();
    });
    byId('random-button').addEventListener('click', () => this.randomTestImage());
    byId<HTMLInputElement>('photo').addEventListener('change', (event) => {
      const file = (event.target as HTMLInputElement).files?.[0];
      if (file) void this.upload(file);
    });
    state.onChange(() => {
      byId<HTMLButtonElement>('random-button').disabled = state.test === null;
      void this.update();
    });
  }

  /** The tab is shown: the bars are drawn at its width. */
  shown(): void {
    void this.bars.redraw();
  }

  private clear(): void {
    this.context.fillStyle = 'white';
    this.context.fillRect(0, 0, this.canvas.width, this.canvas.height);
  }

  /** Pointer events cover the mouse, pens and touch; the canvas takes no scrolling gestures (touch-action: none). */
  private listenForDrawing(): void {
    let last: { x: number; y: number } | null = null;
    const point = (event: PointerEvent) => {
      const box = this.canvas.getBoundingClientRect();
      return { x: ((event.clientX - box.left) / box.width) * this.canvas.width, y: ((event.clientY - box.top) / box.height) * this.canvas.height };
    };
    this.canvas.addEventListener('pointerdown', (event) => {
      this.canvas.setPointerCapture(event.pointerId);
      this.what = 'Your drawing';
      if (this.truth !== null) {
        // Drawing over a test image starts a new drawing.
        this.clear();
        this.truth = null;
      }
      last = point(event);
      this.stroke(last, last);
    });
    this.canvas.addEventListener('pointermove', (event) => {
      if (last === null) return;
      const next = point(event);
      this.stroke(last, next);
      last = next;
    });
    const end = () => {
      last = null;
    };
    this.canvas.addEventListener('pointerup', end);
    this.canvas.addEventListener('pointercancel', end);
  }

  private stroke(from: { x: number; y: number }, to: { x: number; y: number }): void {
    const c = this.context;
    c.strokeStyle = 'black';
    c.lineWidth = STROKE;
    c.lineCap = 'round';
    c.lineJoin = 'round';
    c.beginPath();
    c.moveTo(from.x, from.y);
    c.lineTo(to.x, to.y);
    c.stroke();
    this.fromCanvas();
  }

  /** Preprocesses the canvas, at most once a frame while drawing. */
  private fromCanvas(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    requestAnimationFrame(() => {
      this.scheduled = false;
      const { data, width, height } = this.context.getImageData(0, 0, this.canvas.width, this.canvas.height);
      const result = toFashionMnist({ data, width, height });
      this.pixels = result.pixels;
      this.note.textContent = `What the models see: 28x28, garment light on dark${result.inverted ? ' (your light background was inverted)' : ''}.`;
      void this.update();
    });
  }

  /** The camera's picture (getUserMedia) in place of the drawing area, its centre square classified again and again. */
  private async startCamera(): Promise<void> {
    let stream: MediaStream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: 'environment', width: { ideal: 640 }, height: { ideal: 480 } }, audio: false });
    } catch (error) {
      this.note.textContent = `The camera could not be opened (${error instanceof Error ? error.message : String(error)}); allow it for this page, or draw or upload instead.`;
      return;
    }
    const frame = element('canvas');
    frame.width = CAMERA_SIDE;
    frame.height = CAMERA_SIDE;
    this.camera = { stream, frame };
    this.video.srcObject = stream;
    this.video.hidden = false;
    this.canvas.hidden = true;
    this.cameraButton.setAttribute('aria-pressed', 'true');
    this.cameraButton.textContent = 'Stop the camera';
    await this.video.play();
    this.truth = null;
    this.what = 'The camera\'s picture';
    const next = async () => {
      if (this.camera?.stream !== stream) return;
      if (this.video.videoWidth > 0) {
        this.fromCamera(this.camera.frame);
        await this.update();
      }
      setTimeout(() => void next(), CAMERA_MILLISECONDS);
    };
    void next();
  }

  private stopCamera(): void {
    if (this.camera === null) return;
    for (const track of this.camera.stream.getTracks()) track.stop();
    this.camera = null;
    this.video.srcObject = null;
    this.video.hidden = true;
    this.canvas.hidden = false;
    this.cameraButton.setAttribute('aria-pressed', 'false');
    this.cameraButton.textContent = 'Camera';
  }

  /** The centre square of the camera's frame (what the page shows of it), brought to Fashion-MNIST's form as an upload is. */
  private fromCamera(frame: HTMLCanvasElement): void {
    const { videoWidth: width, videoHeight: height } = this.video;
    const side = Math.min(width, height);
    const context = frame.getContext('2d', { willReadFrequently: true })!;
    context.drawImage(this.video, (width - side) / 2, (height - side) / 2, side, side, 0, 0, CAMERA_SIDE, CAMERA_SIDE);
    const result = toFashionMnist(context.getImageData(0, 0, CAMERA_SIDE, CAMERA_SIDE));
    this.pixels = result.pixels;
    this.note.textContent = `What the models see: the centre of the camera's picture, 28x28, garment light on dark${result.inverted ? ' (its light background inverted)' : ''}.`;
  }

  private async upload(file: File): Promise<void> {
    this.stopCamera();
    this.what = `Your photo ${file.name}`;
    let bitmap: ImageBitmap;
    try {
      bitmap = await createImageBitmap(file);
    } catch {
      this.note.textContent = `${file.name} is not an image this browser can read; try a JPEG or PNG.`;
      return;
    }
    // Shown in the drawing area (fitted, on white), and preprocessed from there.
    const scale = Math.min(this.canvas.width / bitmap.width, this.canvas.height / bitmap.height, PHOTO_SIDE / Math.max(bitmap.width, bitmap.height));
    const width = bitmap.width * scale;
    const height = bitmap.height * scale;
    this.clear();
    this.truth = null;
    this.context.drawImage(bitmap, (this.canvas.width - width) / 2, (this.canvas.height - height) / 2, width, height);
    bitmap.close();
    this.fromCanvas();
  }

  private randomTestImage(): void {
    const test = this.state.test;
    if (test === null) return;
    this.stopCamera();
    const index = this.rng.int(test.count);
    this.pixels = test.pixels.slice(index * PIXELS, (index + 1) * PIXELS);
    this.truth = test.labels[index];
    // Drawn large as ink on white, as it would be drawn by hand; the models see the image itself.
    const small = element('canvas');
    drawImage(small, this.pixels);
    this.clear();
    this.context.imageSmoothingEnabled = false;
    this.context.drawImage(small, 0, 0, this.canvas.width, this.canvas.height);
    this.note.textContent = `Test image #${index}, a ${CLASS_NAMES[this.truth]}: the models see it as it is.`;
    this.what = `Test image #${index} (a ${CLASS_NAMES[this.truth]})`;
    void this.update();
  }

  /**
   * Runs every loaded model on the current image and shows the bars and a sentence per model.
   * A later update supersedes one still computing (a stroke drawn meanwhile): only the latest
   * is shown.
   */
  private async update(): Promise<void> {
    const generation = ++this.updates;
    const models = this.state.models;
    byId('models-status').textContent =
      models.length === 0 ? 'No model loaded yet: train one, or start the app with --model DIR.' : `Models: ${models.map((m) => m.label).join(', ')}; running on ${[...new Set(models.map((m) => m.runtime))].join(' and ')}.`;
    const list = byId('predictions');
    if (this.pixels === null) {
      drawImage(this.preview, new Uint8Array(PIXELS), false);
      this.state.setImage(null);
      list.replaceChildren();
      void this.bars.show([]);
      return;
    }
    drawImage(this.preview, this.pixels, false);
    this.preview.dataset.pixels = this.pixels.join(',');
    this.state.setImage({ pixels: this.pixels, what: this.what });
    const rows: ProbabilityRow[] = [];
    const sentences: HTMLElement[] = [];
    const pixels = this.pixels;
    const answers = [];
    for (const model of models) answers.push(await model.classify(pixels, 1));
    if (generation !== this.updates) return;
    for (const [m, model] of models.entries()) {
      const probabilities = answers[m];
      CLASS_NAMES.forEach((name, c) => rows.push({ model: model.label, class: name, probability: probabilities[c] }));
      const best = argmax(probabilities, 0, CLASS_NAMES.length);
      // The figures themselves ride along as data, for the tests (and anyone who reads the page's source).
      const figures = JSON.stringify(Array.from(probabilities.subarray(0, CLASS_NAMES.length)));
      sentences.push(element('li', { 'data-model': model.id, 'data-probabilities': figures, text: `${model.label}: ${CLASS_NAMES[best]} (${percent(probabilities[best], 1)})` }));
    }
    if (this.truth !== null) sentences.push(element('li', { text: `true class: ${CLASS_NAMES[this.truth]}` }));
    list.replaceChildren(...sentences);
    void this.bars.show(rows);
  }
}
