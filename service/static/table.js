// Table rows for tabular models (tabular-classification, and anomaly detection with a `tabular` section):
// a form built from the config's tabular schema, one field per column, sent to `:predict` as an object by
// column name. An empty field is a missing value (null), which the model's graph imputes.

import { ApiError, postJSON } from "./api.js";
import { Busy, anomaly, classification, describe, predictPath, showError } from "./answers.js";

const TOP_K = 5;
const OTHER = "\u0000other";
/** The select's choice that reveals a free-text field (a value the model did not see in training). */
const SHOWN_FEATURES = 24;

const $ = (id) => document.getElementById(id);

function element(tag, attributes = {}, text = "") {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
  if (text) node.textContent = text;
  return node;
}

/** One labelled control per column: a number field, or a select of the categories plus free text. */
function columnField(column, index) {
  const id = `table-col-${index}`;
  const field = element("div", { class: "field", "data-column": column.name, "data-kind": column.kind });
  const label = element("label", { for: id }, column.name);
  label.append(element("span", { class: "muted kind" }, column.kind === "numeric" ? " number" : " category"));
  field.append(label);
  if (column.kind === "numeric") {
    field.append(element("input", { id, type: "number", step: "any", inputmode: "decimal", placeholder: "empty = missing" }));
    return field;
  }
  const select = element("select", { id });
  select.append(element("option", { value: "" }, "(missing)"));
  for (const category of column.categories) select.append(element("option", { value: category }, category));
  select.append(element("option", { value: OTHER }, "other…"));
  const other = element("input", { type: "text", id: `${id}-other`, "aria-label": `${column.name}: other value`, placeholder: "any other value", hidden: "" });
  select.addEventListener("change", () => {
    other.hidden = select.value !== OTHER;
    if (!other.hidden) other.focus();
  });
  field.append(select, other);
  return field;
}

/** The value a field sends: null when empty (missing), a number for numeric columns, else the text. */
function fieldValue(column, index) {
  const control = $(`table-col-${index}`);
  if (column.kind === "numeric") {
    if (control.validity.badInput) throw new ApiError(0, `${column.name}: not a number; leave it empty for a missing value`);
    return control.value.trim() === "" ? null : Number(control.value);
  }
  if (control.value !== OTHER) return control.value === "" ? null : control.value;
  const text = $(`table-col-${index}-other`).value;
  return text.trim() === "" ? null : text;
}

function featureSummary(tensor) {
  const values = tensor.data.slice(0, SHOWN_FEATURES).map((v) => (v === null ? "NaN" : String(Number(v.toFixed(4)))));
  const more = tensor.data.length > SHOWN_FEATURES ? ", …" : "";
  return `As the model receives it: ${tensor.data.length} features (NaN = missing, imputed in the graph): ${values.join(", ")}${more}`;
}

export class TablePanel {
  constructor() {
    this.model = null;
    this.columns = [];
    this.busy = new Busy($("table-result"));
    $("table-form").addEventListener("submit", (event) => {
      event.preventDefault();
      this.run();
    });
    $("table-clear").addEventListener("click", () => {
      $("table-form").reset();
      for (const other of document.querySelectorAll("#table-fields input[type=text]")) other.hidden = true;
      this.reset();
    });
  }

  select(model) {
    this.model = model;
    this.columns = model.config.tabular.columns;
    $("table-fields").replaceChildren(...this.columns.map(columnField));
    $("table-caption").textContent =
      `${this.columns.length} columns, in the order of the training table; an array in this order works too.`;
    this.reset();
  }

  reset() {
    $("table-result").replaceChildren();
    $("table-features").textContent = "";
    $("table-request").textContent = "";
    showError($("table-error"), null);
  }

  row() {
    return Object.fromEntries(this.columns.map((column, index) => [column.name, fieldValue(column, index)]));
  }

  async run() {
    const model = this.model;
    const ticket = this.busy.start();
    try {
      const instances = [this.row()];
      const path = predictPath(model.name);
      const body = { instances, parameters: { top_k: TOP_K } };
      $("table-request").textContent = describe(path, body);
      const [answer, seen] = await Promise.all([
        postJSON(path, body),
        postJSON(`/ui/models/${encodeURIComponent(model.name)}/preprocess`, { instances }).catch(() => null),
      ]);
      if (!this.busy.latest(ticket)) return;
      showError($("table-error"), null);
      const prediction = answer.predictions[0];
      $("table-result").replaceChildren(model.config.task === "anomaly-detection" ? anomaly(prediction) : classification(prediction));
      $("table-features").textContent = seen ? featureSummary(seen.inputs[0]) : "";
    } catch (failure) {
      if (!this.busy.latest(ticket)) return;
      $("table-result").replaceChildren();
      $("table-features").textContent = "";
      showError($("table-error"), failure);
    } finally {
      this.busy.end(ticket);
    }
  }
}
