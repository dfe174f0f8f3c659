// The supervision board (督办): overdue, due-soon and supervised work, and the load by grid node.

import * as api from "../api.js";
import { fill, h } from "../dom.js";
import { t, label, fmtTime } from "../i18n.js";
import { deadlineBadge, hazardTitle, stateBadge } from "../widgets.js";

function incidentTable(items, id) {
  if (!items.length) return h("p", { class: "muted" }, t("none"));
  return h("table", { id },
    h("thead", {}, h("tr", {}, ["#", t("hazard"), t("grid_cell"), t("state"), t("assignee"), t("deadline"), t("escalation")].map((x) => h("th", { scope: "col" }, x)))),
    h("tbody", {}, items.map((i) => h("tr", {},
      h("td", {}, h("a", { href: `#/incident/${i.id}` }, `#${i.id}`)), h("td", {}, hazardTitle(i)), h("td", {}, i.grid_cell ?? "—"),
      h("td", {}, stateBadge(i)), h("td", {}, i.assigned_worker || i.assigned_unit || "—"),
      h("td", {}, deadlineBadge(i), " ", h("span", { class: "small muted" }, fmtTime(i.stage_deadline_at))),
      h("td", {}, i.supervised ? `${t("supervised")} ${i.escalation_level ?? ""}` : "—")))));
}

export async function render(ctx) {
  const el = h("div", { class: "board" });
  async function draw() {
    const data = await api.supervision();
    fill(el, 
      h("h2", {}, t("board_title")),
      h("section", { class: "card" }, h("h3", {}, t("by_grid")),
        h("table", { id: "board-grid" },
          h("thead", {}, h("tr", {}, [t("grid_cell"), t("open_count"), label("color", "yellow"), label("color", "red"), t("supervised")].map((x) => h("th", { scope: "col" }, x)))),
          h("tbody", {}, (data.by_grid ?? []).map((g) => h("tr", { class: g.red ? "row-red" : g.yellow ? "row-yellow" : "" },
            h("th", { scope: "row" }, `${g.name} (${g.code})`), h("td", {}, g.open), h("td", {}, g.yellow), h("td", {}, g.red), h("td", {}, g.supervised)))))),
      h("section", { class: "card" }, h("h3", {}, `${t("overdue")} (${data.overdue?.length ?? 0})`), incidentTable(data.overdue ?? [], "board-overdue")),
      h("section", { class: "card" }, h("h3", {}, `${t("due_soon")} (${data.yellow?.length ?? 0})`), incidentTable(data.yellow ?? [], "board-yellow")),
      h("section", { class: "card" }, h("h3", {}, `${t("supervised")} (${data.supervised?.length ?? 0})`), incidentTable(data.supervised ?? [], "board-supervised")),
    );
  }
  ctx.onLive(() => draw().catch(() => {}));
  await draw();
  return { el };
}
