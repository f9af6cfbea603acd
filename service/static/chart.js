// A small SVG time-series chart: one line per series, x = seconds before now, y from 0 to a round maximum.

const SVG = "http://www.w3.org/2000/svg";
const WIDTH = 320;
const HEIGHT = 130;
const PAD = { left: 40, right: 8, top: 8, bottom: 20 };

function el(name, attributes = {}, text) {
  const node = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

/** The smallest 1, 2 or 5 times a power of ten at or above `value` (at least `floor`). */
export function niceMax(value, floor = 1) {
  const target = Math.max(value, floor);
  const power = 10 ** Math.floor(Math.log10(target));
  for (const step of [1, 2, 5, 10]) if (step * power >= target) return step * power;
  return 10 * power;
}

export function formatNumber(value) {
  if (value === null || value === undefined || Number.isNaN(value)) return "–";
  if (value === 0) return "0";
  const abs = Math.abs(value);
  if (abs >= 1000) return `${(value / 1000).toFixed(abs >= 10000 ? 0 : 1)}k`;
  if (abs >= 100) return value.toFixed(0);
  if (abs >= 10) return value.toFixed(1);
  if (abs >= 1) return value.toFixed(2);
  return value.toPrecision(2);
}

/**
 * Redraw `svg` with `series`: [{label, color, t: [...], values: [...]}], t in seconds (0 = now, negative
 * before). Null values break the line (nothing happened in that interval).
 */
export function drawChart(svg, series, { window = 120, floor = 1 } = {}) {
  svg.setAttribute("viewBox", `0 0 ${WIDTH} ${HEIGHT}`);
  svg.replaceChildren();
  const values = series.flatMap((s) => s.values.filter((v) => v !== null && v !== undefined));
  const top = niceMax(values.length ? Math.max(...values) : 0, floor);
  const plotW = WIDTH - PAD.left - PAD.right;
  const plotH = HEIGHT - PAD.top - PAD.bottom;
  const x = (t) => PAD.left + plotW * (1 + Math.max(t, -window) / window);
  const y = (v) => PAD.top + plotH * (1 - v / top);

  for (const fraction of [0, 0.5, 1]) {
    const value = top * fraction;
    svg.append(el("line", { x1: PAD.left, x2: WIDTH - PAD.right, y1: y(value), y2: y(value), class: "grid" }));
    svg.append(el("text", { x: PAD.left - 4, y: y(value) + 4, class: "tick", "text-anchor": "end" }, formatNumber(value)));
  }
  for (const t of [-window, -window / 2, 0]) {
    const label = t === 0 ? "now" : `${t}s`;
    const anchor = t === 0 ? "end" : t === -window ? "start" : "middle";
    svg.append(el("text", { x: x(t), y: HEIGHT - 4, class: "tick", "text-anchor": anchor }, label));
  }
  for (const s of series) {
    let path = "";
    const points = s.t.map((t, i) => (t >= -window && s.values[i] !== null && s.values[i] !== undefined ? [x(t), y(s.values[i])] : null));
    points.forEach((point, i) => {
      if (!point) return;
      const joined = i > 0 && points[i - 1];
      if (joined) path += `L${point[0].toFixed(1)},${point[1].toFixed(1)}`;
      else if (points[i + 1]) path += `M${point[0].toFixed(1)},${point[1].toFixed(1)}`;
      else svg.append(el("circle", { cx: point[0], cy: point[1], r: 2.5, fill: s.color })); // a lone point
    });
    if (path) svg.append(el("path", { d: path, class: "line", stroke: s.color }));
  }
}
