// "Try it": a panel per task, each calling the public endpoints (`:predict`, `/infer`) exactly as a
// client would, plus /ui/models/{m}/preprocess to show the input the model actually receives.

import { ApiError, modelPath, postJSON } from "./api.js";
import { Busy, anomaly, classification, describe, predictPath, showError } from "./answers.js";
import { GanPanel } from "./gan.js";
import { GeneratePanel } from "./generate.js";
import { InstancesPanel } from "./instances.js";
import { drawTensor } from "./picture.js";
import { Sketch, base64 } from "./sketch.js";
import { TablePanel } from "./table.js";

const PANELS = {
  "image-classification": "panel-image",
  "anomaly-detection": "panel-image",
  "text-classification": "panel-text",
  "text-generation": "panel-generate",
  "tabular-classification": "panel-table",
  "image-generation": "panel-gan",
  tensor: "panel-tensor",
};
const PANEL_IDS = new Set([...Object.values(PANELS), "panel-instances"]);
const TOP_K = 5;
/** The panel shown first: the most visual task the repository serves. */
const FIRST_CHOICE = [
  "image-classification",
  "text-classification",
  "text-generation",
  "anomaly-detection",
  "tabular-classification",
];

const $ = (id) => document.getElementById(id);

class ImagePanel {
  constructor() {
    this.model = null;
    this.upload = null;
    this.busy = new Busy($("image-result"));
    this.sketch = new Sketch($("sketch"), () => {
      this.upload = null;
      $("image-upload").value = "";
      this.run();
    });
    $("sketch-clear").addEventListener("click", () => {
      this.sketch.clear();
      this.upload = null;
      $("image-upload").value = "";
      $("image-result").replaceChildren();
    });
    $("image-run").addEventListener("click", () => this.run());
    $("image-upload").addEventListener("change", (event) => this.uploaded(event.target.files[0]));
  }

  select(model) {
    this.model = model;
    $("image-result").replaceChildren();
    showError($("image-error"), null);
    const image = model.config.image;
    $("image-seen-caption").textContent = image
      ? `As the model sees it: ${image.width}×${image.height}, values ${image.value_range.join("–")}`
      : "As the model sees it";
  }

  async uploaded(file) {
    if (!file) return;
    this.upload = new Uint8Array(await file.arrayBuffer());
    try {
      const bitmap = await createImageBitmap(file);
      this.sketch.show(bitmap);
    } catch {
      this.sketch.clear(); // Not a picture the browser can show; the server will say what is wrong with it.
    }
    await this.run();
  }

  async run() {
    const error = $("image-error");
    if (!this.upload && this.sketch.empty) {
      showError(error, new ApiError(0, "Draw a digit or upload an image first."));
      return;
    }
    const model = this.model;
    const ticket = this.busy.start();
    const bytes = this.upload || (await this.sketch.png());
    const instances = [{ b64: base64(bytes) }];
    const path = predictPath(model.name);
    const body = { instances, parameters: { top_k: TOP_K } };
    $("image-request").textContent = describe(path, body);
    try {
      const [answer, seen] = await Promise.all([
        postJSON(path, body),
        postJSON(`/ui/models/${encodeURIComponent(model.name)}/preprocess`, { instances }),
      ]);
      if (!this.busy.latest(ticket)) return;
      showError(error, null);
      const prediction = answer.predictions[0];
      $("image-result").replaceChildren(model.config.task === "anomaly-detection" ? anomaly(prediction) : classification(prediction));
      drawTensor($("image-seen"), seen.inputs[0], model.config.image || { value_range: [0, 1] });
      await this.reconstruction(model, seen.inputs[0]);
    } catch (failure) {
      if (!this.busy.latest(ticket)) return;
      $("image-result").replaceChildren();
      showError(error, failure);
    } finally {
      this.busy.end(ticket);
    }
  }

  /** The autoencoder's output beside the input, through the v2 endpoint, when the config names it. */
  async reconstruction(model, input) {
    const name = model.config.anomaly && model.config.anomaly.reconstruction;
    $("recon-figure").hidden = !name;
    if (!name) return;
    const answer = await postJSON(`${modelPath(model.name)}/infer`, { inputs: [input], outputs: [{ name }] });
    const output = answer.outputs[0];
    drawTensor($("image-recon"), { shape: input.shape, data: output.data }, model.config.image || { value_range: [0, 1] });
  }
}

class TextPanel {
  constructor() {
    this.model = null;
    this.busy = new Busy($("text-result"));
    $("text-run").addEventListener("click", () => this.run());
    $("text-input").addEventListener("keydown", (event) => {
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) this.run();
    });
    for (const button of document.querySelectorAll("#panel-text [data-example]")) {
      button.addEventListener("click", () => {
        $("text-input").value = button.dataset.example;
        this.run();
      });
    }
  }

  select(model) {
    this.model = model;
    $("text-result").replaceChildren();
    $("text-tokens").textContent = "";
    showError($("text-error"), null);
  }

  async run() {
    const model = this.model;
    const ticket = this.busy.start();
    const instances = [$("text-input").value];
    const path = predictPath(model.name);
    const body = { instances, parameters: { top_k: TOP_K } };
    $("text-request").textContent = describe(path, body);
    try {
      const [answer, seen] = await Promise.all([
        postJSON(path, body),
        postJSON(`/ui/models/${encodeURIComponent(model.name)}/preprocess`, { instances }),
      ]);
      if (!this.busy.latest(ticket)) return;
      showError($("text-error"), null);
      $("text-result").replaceChildren(classification(answer.predictions[0]));
      $("text-tokens").textContent = tokenSummary(seen.inputs, model.config.text);
    } catch (failure) {
      if (!this.busy.latest(ticket)) return;
      $("text-result").replaceChildren();
      showError($("text-error"), failure);
    } finally {
      this.busy.end(ticket);
    }
  }
}

function tokenSummary(inputs, text) {
  const ids = inputs.find((t) => t.name === text.input_ids);
  const mask = text.attention_mask ? inputs.find((t) => t.name === text.attention_mask) : null;
  const count = mask ? mask.data.reduce((sum, v) => sum + Number(v), 0) : ids.data.length;
  const shown = ids.data.slice(0, count).slice(0, 24).join(" ");
  return `As the model sees it: ${count} tokens (max ${text.max_length}), ids ${shown}${count > 24 ? " …" : ""}`;
}

function tensorExample(model) {
  const inputs = model.metadata.inputs.map((spec) => ({
    name: spec.name,
    datatype: spec.datatype,
    shape: spec.shape.map((d) => (d === -1 ? 1 : d)),
    data: ["…"],
  }));
  return describe(`${modelPath(model.name)}/infer`, { inputs });
}

/** The panel whose form fits the model: by task, then by the input its config describes. */
function panelFor(model) {
  const { task, tabular, image } = model.config;
  if (tabular) return "panel-table";
  if (task === "anomaly-detection" && !image) return "panel-instances";
  return PANELS[task] || "panel-tensor";
}

export class TryIt {
  constructor(status) {
    this.status = status;
    this.select = $("try-model");
    this.image = new ImagePanel();
    this.text = new TextPanel();
    this.generate = new GeneratePanel();
    this.table = new TablePanel();
    this.instances = new InstancesPanel();
    this.gan = new GanPanel(status);
    this.select.addEventListener("change", () => this.show(this.select.value));
  }

  /** Rebuild the model list after the status changed, keeping the selection when it still serves. */
  update() {
    const previous = this.select.value;
    const ready = [...this.status.models.values()].filter((m) => m.ready && m.metadata && m.config);
    this.select.replaceChildren(
      ...ready.map((m) => {
        const option = document.createElement("option");
        option.value = m.name;
        option.textContent = `${m.name} (${m.config.task})`;
        return option;
      }),
    );
    $("panel-none").hidden = ready.length > 0;
    if (!ready.length) {
      this.show(null);
      return;
    }
    const first = FIRST_CHOICE.map((task) => ready.find((m) => m.config.task === task)).find(Boolean) || ready[0];
    const keep = ready.some((m) => m.name === previous) ? previous : first.name;
    this.select.value = keep;
    this.show(keep);
  }

  show(name) {
    const model = name ? this.status.models.get(name) : null;
    const active = model ? panelFor(model) : null;
    for (const id of PANEL_IDS) $(id).hidden = id !== active;
    if (!model) return;
    if (active === "panel-image") this.image.select(model);
    else if (active === "panel-text") this.text.select(model);
    else if (active === "panel-generate") this.generate.select(model);
    else if (active === "panel-table") this.table.select(model);
    else if (active === "panel-instances") this.instances.select(model);
    else if (active === "panel-gan") this.gan.select(model);
    else $("tensor-example").textContent = tensorExample(model);
  }

  /** "Try it" on a model card: select it and bring the panel into view. */
  open(name) {
    this.select.value = name;
    this.show(name);
    $("try").scrollIntoView({ behavior: "smooth" });
    this.select.focus({ preventScroll: true });
  }
}
