// Model tensors back to pixels, to show the input as the model receives it (and a reconstruction).

/**
 * Draw the first sample of a v2 tensor of shape [N, C, H, W] (C = 1 or 3) on `canvas`, undoing the
 * config's mean/std (one value, or one per channel) and value_range so 0..255 comes back. Values outside
 * the range are clipped.
 */
export function drawTensor(canvas, tensor, image) {
  const [, channels, height, width] = tensor.shape;
  const [low, high] = image.value_range || [0, 1];
  const mean = image.mean || null;
  const std = image.std || null;
  canvas.width = width;
  canvas.height = height;
  const context = canvas.getContext("2d");
  const pixels = context.createImageData(width, height);
  const plane = width * height;
  for (let p = 0; p < plane; p += 1) {
    for (let rgb = 0; rgb < 3; rgb += 1) {
      const c = channels === 3 ? rgb : 0;
      let value = Number(tensor.data[c * plane + p]);
      if (mean && std) value = value * std[std.length === 1 ? 0 : c] + mean[mean.length === 1 ? 0 : c];
      const level = ((value - low) / (high - low)) * 255;
      pixels.data[p * 4 + rgb] = Math.max(0, Math.min(255, Math.round(level)));
    }
    pixels.data[p * 4 + 3] = 255;
  }
  context.putImageData(pixels, 0, 0);
}
