// The drawing pad: pointer events (mouse, touch and pen alike), bright strokes on a dark background.

const INK = "#ffffff";
const PAPER = "#000000";
/** Share of the framed picture left around the strokes, about as much as the training digits have. */
const MARGIN = 0.2;

export class Sketch {
  /** `onStroke` runs after each finished stroke. */
  constructor(canvas, onStroke) {
    this.canvas = canvas;
    this.context = canvas.getContext("2d");
    this.onStroke = onStroke;
    this.last = null;
    this.box = null;
    this.clear();
    canvas.addEventListener("pointerdown", (event) => this.down(event));
    canvas.addEventListener("pointermove", (event) => this.move(event));
    for (const type of ["pointerup", "pointercancel"]) canvas.addEventListener(type, (event) => this.up(event));
  }

  get empty() {
    return this.box === null;
  }

  clear() {
    this.context.fillStyle = PAPER;
    this.context.fillRect(0, 0, this.canvas.width, this.canvas.height);
    this.box = null;
  }

  point(event) {
    const rect = this.canvas.getBoundingClientRect();
    return {
      x: ((event.clientX - rect.left) * this.canvas.width) / rect.width,
      y: ((event.clientY - rect.top) * this.canvas.height) / rect.height,
    };
  }

  down(event) {
    event.preventDefault();
    this.canvas.setPointerCapture(event.pointerId);
    this.last = this.point(event);
    this.line(this.last, this.last);
  }

  move(event) {
    if (this.last === null) return;
    const next = this.point(event);
    this.line(this.last, next);
    this.last = next;
  }

  up() {
    if (this.last === null) return;
    this.last = null;
    this.onStroke();
  }

  line(from, to) {
    const width = this.canvas.width / 14;
    const c = this.context;
    c.strokeStyle = INK;
    c.lineWidth = width;
    c.lineCap = "round";
    c.lineJoin = "round";
    c.beginPath();
    c.moveTo(from.x, from.y);
    c.lineTo(to.x, to.y);
    c.stroke();
    const half = width / 2;
    const [x0, x1] = [Math.min(from.x, to.x) - half, Math.max(from.x, to.x) + half];
    const [y0, y1] = [Math.min(from.y, to.y) - half, Math.max(from.y, to.y) + half];
    this.box = this.box
      ? { x0: Math.min(this.box.x0, x0), y0: Math.min(this.box.y0, y0), x1: Math.max(this.box.x1, x1), y1: Math.max(this.box.y1, y1) }
      : { x0, y0, x1, y1 };
  }

  /** Show an uploaded picture in the pad (scaled to fit); it is sent as uploaded, not from the pad. */
  show(image) {
    this.clear();
    const scale = Math.min(this.canvas.width / image.width, this.canvas.height / image.height);
    const [w, h] = [image.width * scale, image.height * scale];
    this.context.drawImage(image, (this.canvas.width - w) / 2, (this.canvas.height - h) / 2, w, h);
  }

  /**
   * The drawing as a PNG, framed on its strokes: a square around them with a margin, so a small digit
   * in a corner arrives as large and centred as the training digits. Everything else (inverting,
   * resizing, scaling values) is the server's preprocessing, driven by the model's config.
   */
  async png() {
    const { x0, y0, x1, y1 } = this.box;
    const side = Math.max(x1 - x0, y1 - y0) / (1 - MARGIN);
    const [cx, cy] = [(x0 + x1) / 2, (y0 + y1) / 2];
    const size = Math.max(8, Math.round(side));
    const frame = document.createElement("canvas");
    frame.width = size;
    frame.height = size;
    const c = frame.getContext("2d");
    c.fillStyle = PAPER;
    c.fillRect(0, 0, size, size);
    c.drawImage(this.canvas, cx - side / 2, cy - side / 2, side, side, 0, 0, size, size);
    const blob = await new Promise((resolve) => frame.toBlob(resolve, "image/png"));
    return new Uint8Array(await blob.arrayBuffer());
  }
}

/** Base64 of bytes, in chunks (String.fromCharCode on a whole picture overflows the call stack). */
export function base64(bytes) {
  let text = "";
  for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(text);
}
