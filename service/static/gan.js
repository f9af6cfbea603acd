// "Try it" for image-generation models: a class, a seed (or random) -> a grid of 16 generated images,
// each captioned with what an image classifier in the repository (digits-cnn when served) says it is;
// and a latent walk between two seeds as a strip of frames.
//
// The walk runs client side: /ui/models/{m}/preprocess turns {label, seed} into the exact z the server
// would draw (service/tasks/latents.py), the page interpolates linearly between the two z vectors and
// sends the frames to the public v2 `/infer` with their labels: what any v2 client could do.

import { ApiError, modelPath, postJSON } from "./api.js";
import { drawTensor } from "./picture.js";

const GRID = 16;
const FRAMES = 9;
const JUDGE_PREFERENCE = "digits-cnn";
const $ = (id) => document.getElementById(id);

function showError(error) {
  const element = $("gan-error");
  if (error === null) {
    element.hidden = true;
    element.textContent = "";
    return;
  }
  if (!(error instanceof ApiError)) console.error(error);
  element.textContent = error.message;
  element.hidden = false;
}

function predictPath(name) {
  return `/v1/models/${encodeURIComponent(name)}:predict`;
}

/** A seed from the field, or null (the server draws one) when the field is blank. */
function seedOf(input) {
  const text = input.value.trim();
  return text === "" ? null : Number(text);
}

export class GanPanel {
  constructor(status) {
    this.status = status;
    this.model = null;
    this.ticket = 0;
    $("gan-run").addEventListener("click", () => this.run());
    $("gan-random").addEventListener("click", () => {
      $("gan-seed").value = "";
      this.run();
    });
    $("gan-walk-run").addEventListener("click", () => this.walk());
  }

  select(model) {
    const changed = !this.model || this.model.name !== model.name;
    this.model = model;
    const settings = model.config.image_generation;
    const picker = $("gan-label");
    $("gan-label-field").hidden = settings.labels.length === 0;
    if (changed) {
      picker.replaceChildren(
        ...settings.labels.map((label) => {
          const option = document.createElement("option");
          option.value = label;
          option.textContent = label;
          return option;
        }),
      );
      $("gan-grid").replaceChildren();
      $("gan-walk").replaceChildren();
      showError(null);
    }
  }

  /** The classifier that captions the images: digits-cnn if ready, else any ready image classifier. */
  judge() {
    const ready = [...this.status.models.values()].filter(
      (m) => m.ready && m.config && m.config.task === "image-classification",
    );
    return ready.find((m) => m.name === JUDGE_PREFERENCE) || ready[0] || null;
  }

  instance(extra) {
    const labels = this.model.config.image_generation.labels;
    return labels.length ? { label: $("gan-label").value, ...extra } : { ...extra };
  }

  async run() {
    const model = this.model;
    const ticket = ++this.ticket;
    const grid = $("gan-grid");
    grid.setAttribute("aria-busy", "true");
    showError(null);
    try {
      const seed = seedOf($("gan-seed"));
      const instance = this.instance(seed === null ? { count: GRID } : { seed, count: GRID });
      const body = { instances: [instance] };
      $("gan-request").textContent = `POST ${predictPath(model.name)}\n${JSON.stringify(body)}`;
      const answer = (await postJSON(predictPath(model.name), body)).predictions[0];
      const judge = this.judge();
      const verdicts = judge
        ? (await postJSON(predictPath(judge.name), { instances: answer.images.map((i) => ({ b64: i.b64 })), parameters: { top_k: 1 } })).predictions
        : [];
      if (ticket !== this.ticket) return;
      $("gan-seed-used").textContent = `seed ${answer.seed}`;
      $("gan-seed-used").dataset.seed = String(answer.seed);
      grid.replaceChildren(
        ...answer.images.map((image, i) => {
          const figure = document.createElement("figure");
          const img = document.createElement("img");
          img.src = `data:image/png;base64,${image.b64}`;
          img.alt = `generated ${answer.label ?? "image"} ${i + 1}`;
          img.className = "pixelated gan-tile";
          figure.append(img);
          if (verdicts[i]) {
            const caption = document.createElement("figcaption");
            const { label, score } = verdicts[i];
            caption.textContent = `${judge.name}: ${label} (${score.toFixed(2)})`;
            caption.dataset.label = label;
            caption.className = answer.label === undefined || label === answer.label ? "ok" : "bad";
            figure.append(caption);
          }
          return figure;
        }),
      );
    } catch (error) {
      if (ticket === this.ticket) showError(error);
    } finally {
      if (ticket === this.ticket) grid.setAttribute("aria-busy", "false");
    }
  }

  async walk() {
    const model = this.model;
    const settings = model.config.image_generation;
    const strip = $("gan-walk");
    strip.setAttribute("aria-busy", "true");
    showError(null);
    try {
      const ends = [seedOf($("gan-walk-from")) ?? 0, seedOf($("gan-walk-to")) ?? 1];
      const base = `/ui/models/${encodeURIComponent(model.name)}/preprocess`;
      const tensors = (await postJSON(base, { instances: ends.map((seed) => this.instance({ seed })) })).inputs;
      const z = tensors.find((t) => t.name === settings.z);
      const width = settings.z_dim;
      const frames = [];
      for (let f = 0; f < FRAMES; f += 1) {
        const t = f / (FRAMES - 1);
        for (let d = 0; d < width; d += 1) frames.push((1 - t) * z.data[d] + t * z.data[width + d]);
      }
      const inputs = [{ name: settings.z, datatype: "FP32", shape: [FRAMES, width], data: frames }];
      if (settings.label) {
        const label = tensors.find((t) => t.name === settings.label).data[0];
        inputs.push({ name: settings.label, datatype: "INT64", shape: [FRAMES], data: Array(FRAMES).fill(label) });
      }
      const body = { inputs };
      $("gan-request").textContent = `POST ${modelPath(model.name)}/infer\n{"inputs": [z ${FRAMES}x${width} interpolated, label]}`;
      const output = (await postJSON(`${modelPath(model.name)}/infer`, body)).outputs.find((o) => o.name === settings.image);
      const [, channels, height, widthPx] = output.shape;
      const plane = channels * height * widthPx;
      strip.replaceChildren(
        ...Array.from({ length: FRAMES }, (_, f) => {
          const canvas = document.createElement("canvas");
          canvas.className = "pixelated gan-frame";
          const frame = { shape: [1, channels, height, widthPx], data: output.data.slice(f * plane, (f + 1) * plane) };
          drawTensor(canvas, frame, { value_range: settings.value_range });
          canvas.setAttribute("aria-label", `frame ${f + 1} of ${FRAMES}`);
          return canvas;
        }),
      );
    } catch (error) {
      showError(error);
    } finally {
      strip.setAttribute("aria-busy", "false");
    }
  }
}
