// The monitors' live alert queue: newest first, refreshed by server-sent events, driven by the keyboard.

import * as api from "../api.js";
import { fill, h } from "../dom.js";
import { t, label, fmtTime, fmtDuration } from "../i18n.js";
import {
  actionButtons, camerasById, deadlineBadge, hazardTitle, dispatchChoices, lastedSeconds, latestBoxes, runAction,
  originalRequest, snapshotFigure, stateBadge, zoneOf,
} from "../widgets.js";

const KEYS = [["J / K", "key_move"], ["Enter", "key_open"], ["C", "key_confirm"], ["X", "key_dismiss"], ["D", "key_dispatch"]];

export async function render(ctx) {
  let filter = "open";
  let items = [];
  let selected = 0;
  let detail = null;
  const [cameras, choices] = await Promise.all([camerasById(), dispatchChoices()]);

  const list = h("ol", { class: "queue", id: "queue", role: "listbox", "aria-label": t("queue_title"), tabindex: "0" });
  const preview = h("section", { class: "preview card", "aria-live": "polite", id: "preview" });
  const total = h("span", { class: "muted", id: "queue-total" });
  const tabs = h("div", { class: "row", role: "group" },
    ["open", "all"].map((name) => h("button", {
      type: "button", class: "tab", "aria-pressed": String(name === filter), dataset: { filter: name },
      onclick: (ev) => { filter = name; for (const b of tabs.children) b.setAttribute("aria-pressed", String(b === ev.currentTarget)); refresh(); },
    }, t(name === "open" ? "filter_open" : "filter_all"))));
  const help = h("dialog", { class: "card", "aria-label": t("shortcuts") },
    h("h3", {}, t("shortcuts")),
    h("dl", { class: "keys" }, KEYS.map(([k, d]) => [h("dt", {}, h("kbd", {}, k)), h("dd", {}, t(d))])),
    h("button", { type: "button", onclick: () => help.close() }, t("close")));

  const el = h("div", { class: "monitor" },
    h("div", { class: "toolbar" }, h("h2", {}, t("queue_title")), total, tabs),
    h("p", { class: "muted small" }, t("queue_help")),
    h("div", { class: "split" }, list, preview), help);

  function visible(all) {
    return filter === "open" ? all.filter((i) => i.state !== "closed") : all;
  }

  function card(inc, index) {
    const zone = zoneOf(cameras, inc);
    return h("li", {
      role: "option", id: `q-${inc.id}`, class: `qitem ${inc.deadline_color ? `edge-${inc.deadline_color}` : ""}`,
      "aria-selected": String(index === selected), dataset: { id: inc.id },
      onclick: () => select(index), ondblclick: () => ctx.go(`incident/${inc.id}`),
    },
    snapshotFigure(inc.latest_snapshot_sha256, { zone, alt: inc.title, cls: "thumb", empty: inc.source === "open311" ? t("source_open311") : null }),
    h("div", { class: "qbody" },
      h("div", { class: "qtitle" }, h("strong", {}, hazardTitle(inc)), " ", h("span", { class: "muted" }, `#${inc.id}`)),
      inc.source === "open311"
        ? h("div", { class: "small" }, `${t("source_open311")} · ${inc.address ?? ""} · ${t("grid_cell")}: ${inc.grid_cell ?? "—"}`)
        : h("div", { class: "small" }, `${t("camera")}: ${inc.camera} · ${t("zone")}: ${inc.zone ?? "—"} · ${t("grid_cell")}: ${inc.grid_cell ?? "—"}`),
      inc.description ? h("div", { class: "small clamp" }, inc.description) : null,
      h("div", { class: "small" }, `${t("lasted")}: ${fmtDuration(lastedSeconds(inc))} · `, h("span", { class: `cond-${inc.condition}` }, label("condition", inc.condition))),
      h("div", { class: "row" }, stateBadge(inc), deadlineBadge(inc), inc.supervised ? h("span", { class: "badge deadline-red" }, t("supervised")) : null)));
  }

  async function showPreview() {
    const inc = items[selected];
    if (!inc) {
      fill(preview, h("p", { class: "muted" }, t("no_alerts")));
      return;
    }
    try {
      detail = await api.incident(inc.id);
    } catch (err) {
      fill(preview, h("p", { class: "error" }, err.message));
      return;
    }
    const clip = detail.evidence?.find((e) => e.content_type.startsWith("video/") && e.available);
    fill(preview, 
      h("h3", {}, `${hazardTitle(detail)} #${detail.id}`),
      snapshotFigure(detail.latest_snapshot_sha256, { zone: zoneOf(cameras, detail), boxes: latestBoxes(detail), alt: detail.title }),
      clip ? originalRequest(clip.sha256, { video: true }) : null,
      h("dl", { class: "facts" },
        detail.source === "open311" ? [h("dt", {}, t("address")), h("dd", {}, detail.address ?? "—"), h("dt", {}, t("description")), h("dd", {}, detail.description ?? "—")] : null,
        h("dt", {}, t("state")), h("dd", {}, stateBadge(detail)),
        h("dt", {}, t("deadline")), h("dd", {}, deadlineBadge(detail)),
        h("dt", {}, t("started")), h("dd", {}, fmtTime(detail.started_at)),
        h("dt", {}, t("score")), h("dd", {}, detail.max_score?.toFixed(2)),
        h("dt", {}, t("assignee")), h("dd", {}, detail.assigned_worker || detail.assigned_unit || "—")),
      actionButtons(detail, () => refresh(), choices),
      h("p", {}, h("a", { href: `#/incident/${detail.id}` }, `${t("open_incident")} #${detail.id} →`)),
    );
  }

  function select(index) {
    if (!items.length) return;
    selected = Math.max(0, Math.min(items.length - 1, index));
    for (const li of list.children) li.setAttribute("aria-selected", String(li.dataset.id === String(items[selected].id)));
    const li = list.children[selected];
    list.setAttribute("aria-activedescendant", li.id);
    li.scrollIntoView({ block: "nearest" });
    showPreview();
  }

  async function refresh() {
    const keep = items[selected]?.id;
    const data = await api.incidents({ limit: 100 });
    items = visible(data.items);
    total.textContent = `(${items.length})`;
    const found = items.findIndex((i) => i.id === keep);
    selected = found >= 0 ? found : 0;
    fill(list, ...items.map(card));
    if (!items.length) list.append(h("li", { class: "muted" }, t("no_alerts")));
    else list.setAttribute("aria-activedescendant", `q-${items[selected].id}`);
    await showPreview();
  }

  async function shortcut(action) {
    if (!detail || !(detail.allowed_actions ?? []).includes(action)) return;
    try {
      if (await runAction(detail, action, choices)) await refresh();
    } catch { /* shown by runAction */ }
  }

  function onKey(ev) {
    if (ev.target.closest("input, textarea, select, dialog") || ev.ctrlKey || ev.metaKey || ev.altKey) return;
    const key = ev.key.toLowerCase();
    // Enter on a link or button belongs to that control.
    if (key === "enter" && ev.target.closest("a, button")) return;
    const handlers = {
      j: () => select(selected + 1), arrowdown: () => select(selected + 1),
      k: () => select(selected - 1), arrowup: () => select(selected - 1),
      enter: () => items[selected] && ctx.go(`incident/${items[selected].id}`),
      c: () => shortcut("confirm"), x: () => shortcut("dismiss"), d: () => shortcut("dispatch"),
      "?": () => help.showModal(),
    };
    if (handlers[key]) {
      ev.preventDefault();
      handlers[key]();
    }
  }

  document.addEventListener("keydown", onKey);
  ctx.onLive(() => refresh().catch(() => {}));
  await refresh();
  return { el, dispose: () => document.removeEventListener("keydown", onKey) };
}
