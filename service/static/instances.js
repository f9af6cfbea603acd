// Models whose `:predict` instances are plain vectors (an anomaly detector with neither an image nor a
// tabular section): the instances as JSON in a text box, prefilled with one zero sample of the input's shape.

import { postJSON } from "./api.js";
import { Busy, anomaly, classification, describe, predictPath, showError } from "./answers.js";

const $ = (id) => document.getElementById(id);

export class InstancesPanel {
  constructor() {
    this.model = null;
    this.busy = new Busy($("instances-result"));
    $("instances-run").addEventListener("click", () => this.run());
    $("instances-input").addEventListener("keydown", (event) => {
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) this.run();
    });
  }

  select(model) {
    this.model = model;
    const sample = model.metadata.inputs[0].shape.slice(1).map((d) => (d === -1 ? 1 : d));
    const size = sample.reduce((a, b) => a * b, 1);
    $("instances-input").value = JSON.stringify([new Array(size).fill(0)]);
    $("instances-caption").textContent = `Instances: a JSON array of samples, each ${size} numbers (shape [${sample.join(", ")}], flat or nested)`;
    $("instances-result").replaceChildren();
    $("instances-request").textContent = "";
    showError($("instances-error"), null);
  }

  async run() {
    const model = this.model;
    const ticket = this.busy.start();
    try {
      const instances = JSON.parse($("instances-input").value);
      const path = predictPath(model.name);
      const body = { instances };
      $("instances-request").textContent = describe(path, body);
      const answer = await postJSON(path, body);
      if (!this.busy.latest(ticket)) return;
      showError($("instances-error"), null);
      const prediction = answer.predictions[0];
      $("instances-result").replaceChildren(model.config.task === "anomaly-detection" ? anomaly(prediction) : classification(prediction));
    } catch (failure) {
      if (!this.busy.latest(ticket)) return;
      $("instances-result").replaceChildren();
      showError($("instances-error"), failure);
    } finally {
      this.busy.end(ticket);
    }
  }
}
