// The dashboard: headline rates, trends, the grid tree coloured by the monthly index, device health.

import * as api from "../api.js";
import { fill, h } from "../dom.js";
import { t, label, fmtTime, fmtDuration, fmtPercent } from "../i18n.js";
import { barChart, columnChart } from "../charts.js";
import { actuatorsTable } from "../widgets.js";

const DAYS = 30;

function dayKey(date) {
  return date.toISOString().slice(0, 10);
}

/** Pure: /stats' `by_day` ({day, incidents}) as the last `days` days, oldest first, empty days 0. */
export function perDay(byDay, days = DAYS, now = new Date()) {
  const counts = new Map();
  for (let i = days - 1; i >= 0; i--) counts.set(dayKey(new Date(now - i * 86400000)), 0);
  for (const row of byDay ?? []) if (counts.has(row.day)) counts.set(row.day, row.incidents);
  return [...counts].map(([day, value]) => ({ label: day.slice(5), value }));
}

/** Pure: /stats' grouped rows ({KEY, incidents}) largest first, as [key, count]. */
function largestFirst(rows, key) {
  return (rows ?? []).map((r) => [r[key] ?? "—", r.incidents]).sort((a, b) => b[1] - a[1]);
}

function kpi(name, value, id) {
  return h("div", { class: "kpi", id }, h("span", { class: "kpi-value" }, value), h("span", { class: "kpi-name" }, t(name)));
}

function gridTree(nodes) {
  const children = new Map();
  for (const n of nodes) {
    const parent = n.parent ?? "";
    if (!children.has(parent)) children.set(parent, []);
    children.get(parent).push(n);
  }
  const codes = new Set(nodes.map((n) => n.code));
  const branch = (list) => h("ul", { class: "tree" }, list.map((n) => {
    const color = n.index?.color ?? "none";
    return h("li", { dataset: { code: n.code, color } },
      h("span", { class: `node idx-${color}` },
        h("span", { class: "dot", "aria-hidden": "true" }), `${n.name} `,
        h("span", { class: "small muted" }, `${n.code} · ${label("index", n.index?.color)}${n.index?.score !== undefined && n.index?.score !== null ? ` ${n.index.score}` : ""} · ${t("open_count")} ${n.open ?? 0}${n.overdue ? ` · ${t("overdue")} ${n.overdue}` : ""}`)),
      children.has(n.code) ? branch(children.get(n.code)) : null);
  }));
  const roots = nodes.filter((n) => !n.parent || !codes.has(n.parent));
  return branch(roots);
}

function healthTable(sites) {
  const rows = [];
  for (const site of sites) {
    for (const edge of site.edges) {
      rows.push(h("tr", { class: "edge-row" }, h("th", { scope: "row" }, `${t("edge")} ${edge.id}`),
        h("td", {}, h("span", { class: `badge health-${edge.state}` }, label("health", edge.state))), h("td", {}, fmtTime(edge.at)),
        h("td", { class: edge.problems?.length ? "edge-problems" : "" }, [edge.version, ...(edge.problems ?? [])].filter(Boolean).join(" · "))));
      for (const cam of edge.cameras) {
        rows.push(h("tr", { dataset: { camera: cam.id } }, h("td", {}, `· ${cam.id}`),
          h("td", {}, h("span", { class: `badge health-${cam.health}` }, label("health", cam.health))), h("td", {}, fmtTime(cam.health_since)), h("td", {}, cam.cause ?? "")));
      }
    }
  }
  return h("table", { id: "health" },
    h("thead", {}, h("tr", {}, [t("camera"), t("state"), t("last_seen"), ""].map((x) => h("th", { scope: "col" }, x)))),
    h("tbody", {}, rows));
}

/** Where /stats read its figures, when central has a read replica (`serve --read-database-url`); else nothing. */
function freshnessLine(f) {
  if (!f || (f.source === "primary" && !f.fallback)) return null;
  const text = f.source === "replica"
    ? t("read_from_replica").replace("{s}", Number(f.staleness_s).toFixed(1))
    : t("read_from_primary") + f.fallback;
  return h("p", { class: "muted small", id: "freshness" }, text);
}

export async function render(ctx) {
  const el = h("div", { class: "dashboard" });
  async function draw() {
    const since = new Date(Date.now() - DAYS * 86400000).toISOString();
    // Every figure is aggregated by central over all incidents (GET /stats), never counted here.
    const [stats, nodes, sites, recent] = await Promise.all([
      api.stats(),
      api.grid().catch(() => []),
      api.sites().catch(() => []),
      api.stats({ since }),
    ]);
    const names = new Map(nodes.map((n) => [n.code, n.name]));
    const falseAlarms = (stats.false_alarm_rate_by_camera ?? []).map((r) => ({ label: r.camera, value: r.false_alarms, rate: r.rate }));
    const stages = Object.entries(stats.mean_stage_s ?? {}).filter(([, v]) => v !== null).map(([k, v]) => ({ label: label("stage", k), value: v }));
    fill(el, 
      h("h2", {}, t("dashboard_title")),
      freshnessLine(stats.freshness),
      h("div", { class: "kpis" },
        kpi("total", String(stats.total ?? 0), "kpi-total"),
        kpi("closure_rate", fmtPercent(stats.closure_rate), "kpi-closure"),
        kpi("on_time_rate", fmtPercent(stats.on_time_rate), "kpi-ontime"),
        kpi("rework_rate", fmtPercent(stats.rework_rate), "kpi-rework"),
        kpi("overdue_now", String(stats.overdue_now ?? 0), "kpi-overdue")),
      h("div", { class: "cards" },
        h("section", { class: "card span2" }, h("h3", {}, t("trend_by_day")), columnChart(perDay(recent.by_day), { title: t("trend_by_day") })),
        h("section", { class: "card" }, h("h3", {}, t("by_hazard")),
          barChart(largestFirst(recent.by_hazard, "hazard").map(([k, v]) => ({ label: label("hazard", k), value: v })), { title: t("by_hazard") })),
        h("section", { class: "card" }, h("h3", {}, t("by_grid_node")),
          barChart(largestFirst(recent.by_grid_cell, "grid_cell").map(([k, v]) => ({ label: names.get(k) ?? k, value: v })), { title: t("by_grid_node") })),
        h("section", { class: "card", id: "grid-index" }, h("h3", {}, t("grid_index")), gridTree(nodes)),
        h("section", { class: "card" }, h("h3", {}, t("false_alarms")),
          barChart(falseAlarms.map((r) => ({ ...r, color: "red" })), { title: t("false_alarms") })),
        h("section", { class: "card" }, h("h3", {}, t("mean_stage")), barChart(stages, { title: t("mean_stage"), format: fmtDuration })),
        h("section", { class: "card span2" }, h("h3", {}, t("health")), healthTable(sites)),
        h("section", { class: "card span2", id: "actuators-card" }, h("h3", {}, t("actuators")), actuatorsTable(sites, () => draw()))),
    );
  }
  ctx.onLive(() => draw().catch(() => {}));
  await draw();
  return { el };
}
