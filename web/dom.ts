/** Small helpers to build the page's elements. */

/** An element with attributes (`text` sets its text) and children. */
export function element<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attributes: Record<string, string> = {},
  ...children: (Node | string)[]
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (name === 'text') node.textContent = value;
    else node.setAttribute(name, value);
  }
  node.append(...children);
  return node;
}

/** The element with this id, which the page must have. */
export function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const node = document.getElementById(id);
  if (node === null) throw new Error(`the page lacks #${id}`);
  return node as T;
}

export const percent = (value: number, digits = 2) => `${(value * 100).toFixed(digits)}%`;

/** Draws a 28x28 image (0 = background) into a canvas as dark ink on white, as the report shows them. */
export function drawImage(canvas: HTMLCanvasElement, pixels: Uint8Array, inkOnWhite = true): void {
  canvas.width = 28;
  canvas.height = 28;
  const context = canvas.getContext('2d');
  if (context === null) return;
  const image = context.createImageData(28, 28);
  for (let i = 0; i < 784; i++) {
    const value = inkOnWhite ? 255 - pixels[i] : pixels[i];
    image.data.set([value, value, value, 255], 4 * i);
  }
  context.putImageData(image, 0, 0);
}
