// The server facts in the header and one card per model, from the public endpoints: /v2, the health
// and repository-index endpoints, model metadata and config; the model card from /ui/cards.

import { ApiError, getJSON, imageSource, modelPath, postJSON } from "./api.js";
import { renderMarkdown } from "./markdown.js";

function node(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (key === "class") element.className = value;
    else element.setAttribute(key, value);
  }
  element.append(...children.filter((c) => c !== null && c !== undefined));
  return element;
}

function definitions(pairs) {
  const list = node("dl", { class: "pairs" });
  for (const [term, value] of pairs) {
    if (value === null || value === undefined || value === "") continue;
    list.append(node("div", {}, node("dt", {}, term), node("dd", {}, String(value))));
  }
  return list;
}

function formatMetric(value) {
  return typeof value === "number" && !Number.isInteger(value) ? value.toFixed(4) : String(value);
}

/** Everything known about each model: {name, rows, metadata, config, card}, by name. */
export class ModelStatus {
  constructor(container) {
    this.container = container;
    this.models = new Map();
    this.signature = "";
  }

  /** Refresh from the server; resolves to true when the set of models or their states changed. */
  async refresh() {
    const rows = await postJSON("/v2/repository/index", {});
    const signature = JSON.stringify(rows);
    if (signature === this.signature) return false;
    this.signature = signature;
    const byName = new Map();
    for (const row of rows) {
      if (!byName.has(row.name)) byName.set(row.name, []);
      byName.get(row.name).push(row);
    }
    const cards = await getJSON("/ui/cards");
    const models = [...byName].map(([name, modelRows]) => ({
      name,
      rows: modelRows,
      ready: modelRows.some((row) => row.state === "READY"),
      metadata: null,
      config: null,
      error: null,
      cards: cards.filter((card) => card.name === name),
    }));
    await Promise.all(models.filter((model) => model.ready).map((model) => this.describe(model)));
    this.models = new Map(models.map((model) => [model.name, model]));
    this.render();
    return true;
  }

  async describe(model) {
    try {
      const [metadata, config] = await Promise.all([
        getJSON(modelPath(model.name)),
        getJSON(`${modelPath(model.name)}/config`),
      ]);
      model.metadata = metadata;
      model.config = config.nnserve;
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      model.error = error.message;
    }
  }

  providers() {
    const names = new Set();
    for (const model of this.models.values()) if (model.metadata) names.add(model.metadata.provider);
    return [...names].join(", ") || "–";
  }

  render() {
    const cards = [...this.models.values()].map((model) => this.card(model));
    if (!cards.length) cards.push(node("p", {}, "The repository holds no model."));
    this.container.replaceChildren(...cards);
  }

  card(model) {
    const { name, metadata, config } = model;
    const state = model.ready ? "ready" : "not ready";
    const article = node("article", {
      class: `model ${model.ready ? "is-ready" : "is-down"}`,
      "data-model": name,
      "data-ready": String(model.ready),
      "aria-labelledby": `model-${name}-title`,
    });
    const task = metadata ? metadata.task : config ? config.task : null;
    article.append(
      node(
        "header",
        {},
        node("h3", { id: `model-${name}-title` }, name),
        node("span", { class: `badge ${model.ready ? "ok" : "bad"}`, "data-role": "readiness" }, state),
        task ? node("span", { class: "task" }, task) : null,
      ),
    );
    if (config && config.description) article.append(node("p", { class: "description" }, config.description));

    const versions = node("ul", { class: "versions", "aria-label": `Versions of ${name}` });
    for (const row of model.rows) {
      const label = row.version ? `version ${row.version}` : "model";
      const item = node("li", { "data-state": row.state }, node("span", { class: "state" }, row.state), ` ${label}`);
      if (row.reason) item.append(node("span", { class: "reason" }, `: ${row.reason}`));
      versions.append(item);
    }
    article.append(versions);
    if (model.error) article.append(node("p", { class: "error" }, model.error));

    if (metadata && config) {
      const batching = config.batching;
      article.append(
        definitions([
          ["Serving version", metadata.versions.at(-1)],
          ["Provider", metadata.provider],
          ["Max batch", batching.max_batch_size],
          ["Queue delay", `${batching.max_queue_delay_ms} ms`],
          ["Queue size", batching.max_queue_size],
          ["Instances", config.execution.instances],
        ]),
      );
      article.append(this.tensors(metadata));
    }
    for (const card of model.cards) article.append(this.modelCard(card));
    if (model.ready && task) {
      const button = node("button", { type: "button", class: "try", "data-try": name }, "Try it");
      article.append(button);
    }
    return article;
  }

  tensors(metadata) {
    const count = metadata.inputs.length + metadata.outputs.length;
    const details = node("details", {}, node("summary", {}, `Inputs and outputs (${count} tensors)`));
    const table = node("table", { class: "tensors" });
    table.append(node("caption", {}, "Batch axis first; -1: any size"));
    const head = table.createTHead().insertRow();
    for (const title of ["", "name", "type", "shape"]) head.append(node("th", { scope: "col" }, title));
    const body = table.createTBody();
    for (const [kind, specs] of [["in", metadata.inputs], ["out", metadata.outputs]]) {
      for (const spec of specs) {
        const row = body.insertRow();
        for (const text of [kind, spec.name, spec.datatype, `[${spec.shape.join(", ")}]`]) row.insertCell().textContent = text;
      }
    }
    details.append(table);
    return details;
  }

  modelCard(card) {
    const section = node("div", { class: "card-info" });
    const metrics = Object.entries(card.test_metrics);
    if (metrics.length) {
      const table = node("table", { class: "metrics", "data-role": "test-metrics" });
      table.append(node("caption", {}, `Test metrics, version ${card.version}`));
      const body = table.createTBody();
      for (const [key, value] of metrics) {
        const row = body.insertRow();
        row.append(node("th", { scope: "row" }, key), node("td", {}, formatMetric(value)));
      }
      section.append(table);
    }
    if (card.parameters) section.append(node("p", { class: "muted" }, `${card.parameters.toLocaleString("en")} parameters`));
    if (card.card) {
      const details = node("details", {}, node("summary", {}, `Model card (version ${card.version})`));
      details.append(renderMarkdown(card.card));
      if (card.curves) {
        const path = `/ui/models/${encodeURIComponent(card.name)}/versions/${card.version}/curves.png`;
        const image = node("img", { alt: `Training curves of ${card.name} version ${card.version}`, loading: "lazy" });
        imageSource(path).then((src) => { image.src = src; }, () => { image.alt += " (could not be loaded)"; });
        details.append(image);
      }
      section.append(details);
    }
    return section;
  }
}
