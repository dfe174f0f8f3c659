// Small SVG charts, enough for the dashboard: no chart library to vendor or update.

import { h, s } from "./dom.js";

/** Horizontal bars: rows of {label, value, color?}. Each bar carries its number as text too. */
export function barChart(rows, { title, format = String } = {}) {
  const max = Math.max(1, ...rows.map((r) => r.value));
  const rowH = 26;
  const width = 420;
  const labelW = 150;
  const svg = s("svg", { viewBox: `0 0 ${width} ${Math.max(rowH, rows.length * rowH)}`, role: "img", "aria-label": title, class: "chart" });
  rows.forEach((r, i) => {
    const y = i * rowH;
    const w = ((width - labelW - 60) * r.value) / max;
    svg.append(
      s("text", { x: labelW - 6, y: y + 17, "text-anchor": "end", class: "axis" }, r.label),
      s("rect", { x: labelW, y: y + 4, width: Math.max(1, w), height: rowH - 8, class: `bar ${r.color ? `fill-${r.color}` : ""}` }),
      s("text", { x: labelW + w + 6, y: y + 17, class: "value" }, format(r.value)),
    );
  });
  return h("figure", { class: "chartbox" }, svg, rows.length ? null : h("p", { class: "muted" }, "—"));
}

/** Columns over time: points of {label, value}; every fifth label is printed. */
export function columnChart(points, { title } = {}) {
  const max = Math.max(1, ...points.map((p) => p.value));
  const width = 620;
  const height = 120;
  const pad = 24;
  const step = (width - pad * 2) / Math.max(1, points.length);
  const svg = s("svg", { viewBox: `0 0 ${width} ${height + 20}`, role: "img", "aria-label": title, class: "chart" });
  svg.append(s("line", { x1: pad, y1: height, x2: width - pad, y2: height, class: "gridline" }));
  points.forEach((p, i) => {
    const bh = ((height - 20) * p.value) / max;
    const x = pad + i * step;
    svg.append(s("rect", { x: x + 1, y: height - bh, width: Math.max(1, step - 2), height: bh, class: "bar" }, s("title", {}, `${p.label}: ${p.value}`)));
    if (p.value) svg.append(s("text", { x: x + step / 2, y: height - bh - 3, "text-anchor": "middle", class: "value small" }, String(p.value)));
    if (i % 5 === 0) svg.append(s("text", { x: x + step / 2, y: height + 15, "text-anchor": "middle", class: "axis" }, p.label));
  });
  return h("figure", { class: "chartbox" }, svg);
}
