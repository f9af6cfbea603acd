// The live panel: polls /ui/stats (figures the server computes from its Prometheus metrics) and draws
// one small chart per figure, one line per model version.

import { getJSON } from "./api.js";
import { drawChart, formatNumber } from "./chart.js";

const PALETTE = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#ca8a04", "#db2777"];
const CHARTS = [
  { id: "chart-rps", figure: "rps", floor: 1 },
  { id: "chart-p50", figure: "p50_ms", floor: 1 },
  { id: "chart-p99", figure: "p99_ms", floor: 1 },
  { id: "chart-batch", figure: "batch", floor: 1 },
  { id: "chart-queue", figure: "queue", floor: 1 },
  { id: "chart-tps", figure: "tps", floor: 10, only: (m) => m.task === "text-generation" },
];
const COLUMNS = [
  ["requests", (m) => m.totals.requests],
  ["rps", (m) => m.current.rps],
  ["p50_ms", (m) => m.current.p50_ms],
  ["p99_ms", (m) => m.current.p99_ms],
  ["batch", (m) => m.current.batch],
  ["queue", (m) => m.current.queue],
  ["tps", (m) => m.current.tps],
  ["errors", (m) => m.totals.errors],
];

export function formatDuration(seconds) {
  const s = Math.floor(seconds);
  const [d, h, m] = [Math.floor(s / 86400), Math.floor((s % 86400) / 3600), Math.floor((s % 3600) / 60)];
  if (d) return `${d}d ${h}h ${m}m`;
  if (h) return `${h}h ${m}m ${s % 60}s`;
  return m ? `${m}m ${s % 60}s` : `${s % 60}s`;
}

export class LivePanel {
  constructor({ table, legend, total, uptime, error, intervalMs = 1000 }) {
    Object.assign(this, { table, legend, total, uptime, error, intervalMs });
    this.colors = new Map();
    this.timer = null;
  }

  start() {
    const tick = async () => {
      if (!document.hidden) await this.poll();
      this.timer = setTimeout(tick, this.intervalMs);
    };
    tick();
  }

  async poll() {
    try {
      const stats = await getJSON("/ui/stats");
      this.error.hidden = true;
      this.render(stats);
    } catch (error) {
      this.error.textContent = `Live figures unavailable: ${error.message}`;
      this.error.hidden = false;
    }
  }

  color(key) {
    if (!this.colors.has(key)) this.colors.set(key, PALETTE[this.colors.size % PALETTE.length]);
    return this.colors.get(key);
  }

  render(stats) {
    this.total.textContent = String(stats.totals.requests);
    this.total.dataset.value = String(stats.totals.requests);
    this.uptime.textContent = formatDuration(stats.uptime_s);
    const models = stats.models.map((m) => ({ ...m, key: `${m.name} v${m.version}` }));
    for (const chart of CHARTS) {
      const shown = chart.only ? models.filter(chart.only) : models;
      const series = shown.map((m) => ({ label: m.key, color: this.color(m.key), t: m.series.t, values: m.series[chart.figure] }));
      drawChart(document.getElementById(chart.id), series, { window: stats.window_s, floor: chart.floor });
    }
    this.legend.replaceChildren(
      ...models.map((m) => {
        const item = document.createElement("li");
        const swatch = document.createElement("span");
        swatch.className = "swatch";
        swatch.style.background = this.color(m.key);
        item.append(swatch, m.key);
        return item;
      }),
    );
    const body = this.table.tBodies[0];
    body.replaceChildren(
      ...models.map((m) => {
        const row = document.createElement("tr");
        row.dataset.model = m.name;
        const head = document.createElement("th");
        head.scope = "row";
        head.textContent = m.key;
        row.append(head);
        for (const [name, value] of COLUMNS) {
          const cell = row.insertCell();
          cell.dataset.figure = name;
          cell.textContent = name === "requests" || name === "errors" ? String(value(m)) : formatNumber(value(m));
        }
        return row;
      }),
    );
  }
}
