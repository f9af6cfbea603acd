// What every try-it panel shares: the request as text, the answer of a classifier or an anomaly detector
// drawn the same way for every input kind, errors as the server wrote them, and overlapping runs.

import { ApiError } from "./api.js";

export function showError(element, error) {
  if (error === null) {
    element.hidden = true;
    element.textContent = "";
    return;
  }
  if (!(error instanceof ApiError)) console.error(error);
  element.textContent = error.message;
  element.hidden = false;
}

/** The request as curl would send it, so users can repeat it from a terminal. */
export function describe(path, body) {
  let text = JSON.stringify(body);
  text = text.replace(/"b64":"([^"]{24})[^"]*"/g, '"b64":"$1…"');
  return `POST ${path}\n${text}`;
}

export function predictPath(name) {
  return `/v1/models/${encodeURIComponent(name)}:predict`;
}

/** Horizontal bars for [{label, score}], highest first. */
export function bars(ranked) {
  const list = document.createElement("ol");
  list.className = "bars";
  for (const { label, score } of ranked) {
    const item = document.createElement("li");
    item.dataset.label = label;
    const name = document.createElement("span");
    name.className = "bar-label";
    name.textContent = label;
    const track = document.createElement("span");
    track.className = "bar-track";
    const fill = document.createElement("span");
    fill.className = "bar-fill";
    fill.style.width = `${(score * 100).toFixed(1)}%`;
    track.append(fill);
    const value = document.createElement("span");
    value.className = "bar-value";
    value.textContent = score.toFixed(3);
    item.append(name, track, value);
    list.append(item);
  }
  return list;
}

export function verdict(text, role, good) {
  const p = document.createElement("p");
  p.className = `verdict ${good ? "ok" : "bad"}`;
  p.dataset.role = role;
  p.textContent = text;
  return p;
}

export function classification(prediction) {
  const fragment = document.createDocumentFragment();
  fragment.append(verdict(prediction.label, "top-label", true), bars(prediction.top_k));
  return fragment;
}

export function anomaly(prediction) {
  const { score, threshold, is_anomaly: isAnomaly } = prediction;
  const fragment = document.createDocumentFragment();
  fragment.append(verdict(isAnomaly ? "anomaly" : "normal", "verdict", !isAnomaly));
  const scale = Math.max(score, threshold) * 1.25 || 1;
  const gauge = document.createElement("div");
  gauge.className = "gauge";
  gauge.setAttribute("role", "img");
  gauge.setAttribute("aria-label", `score ${score.toFixed(4)} against threshold ${threshold.toFixed(4)}`);
  const fill = document.createElement("span");
  fill.className = `gauge-fill ${isAnomaly ? "bad" : "ok"}`;
  fill.style.width = `${((score / scale) * 100).toFixed(1)}%`;
  const mark = document.createElement("span");
  mark.className = "gauge-threshold";
  mark.style.left = `${((threshold / scale) * 100).toFixed(1)}%`;
  gauge.append(fill, mark);
  const figures = document.createElement("p");
  figures.className = "muted";
  figures.textContent = `score ${score.toFixed(4)} · threshold ${threshold.toFixed(4)} (anomaly when above)`;
  fragment.append(gauge, figures);
  return fragment;
}

/**
 * Runs of one panel may overlap (each stroke starts one): only the latest run's answer is shown, and
 * the result region is aria-busy until that answer is in.
 */
export class Busy {
  constructor(region) {
    this.region = region;
    this.ticket = 0;
    region.setAttribute("aria-busy", "false");
  }

  start() {
    this.region.setAttribute("aria-busy", "true");
    this.ticket += 1;
    return this.ticket;
  }

  latest(ticket) {
    return ticket === this.ticket;
  }

  end(ticket) {
    if (this.latest(ticket)) this.region.setAttribute("aria-busy", "false");
  }
}
