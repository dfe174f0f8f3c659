// One incident: evidence gallery, facts, history from the audit trail, and the actions allowed now.

import * as api from "../api.js";
import { boxEditor } from "../boxes.js";
import { fill, h } from "../dom.js";
import { t, label, fmtTime, fmtDuration } from "../i18n.js";
import { DESK_ROLES } from "../roles.js";
import {
  actionButtons, camerasById, deadlineBadge, hazardTitle, dispatchChoices, lastedSeconds, latestBoxes, originalRequest,
  releaseForm, snapshotFigure, stateBadge, zoneOf,
} from "../widgets.js";

const KIND_ORDER = { edge: 0, check: 1, photo: 2 };

function gallery(detail, cameras) {
  const zone = zoneOf(cameras, detail);
  const boxes = latestBoxes(detail);
  const items = [...(detail.evidence ?? [])].sort((a, b) => (KIND_ORDER[a.kind] ?? 0) - (KIND_ORDER[b.kind] ?? 0));
  if (!items.length) return h("p", { class: "muted" }, t("none"));
  return h("ul", { class: "gallery" }, items.map((ev) => {
    const kindText = ev.kind === "photo" ? t("photos") : ev.kind === "check" ? t("checks") : t("snapshot");
    let body;
    if (!ev.available) body = h("div", { class: "noimg" }, t("pending_upload"));
    else if (ev.content_type.startsWith("video/")) body = originalRequest(ev.sha256, { video: true });
    else if (ev.kind === "photo") body = [snapshotFigure(ev.sha256, { alt: `${kindText} ${ev.sha256.slice(0, 8)}` }), originalRequest(ev.sha256, { alt: kindText })];
    else body = [snapshotFigure(ev.sha256, { zone, boxes: ev.sha256 === detail.latest_snapshot_sha256 ? boxes : [], alt: `${kindText} ${ev.sha256.slice(0, 8)}` }), originalRequest(ev.sha256, { alt: kindText })];
    return h("li", { class: `ev ev-${ev.kind || "edge"}`, dataset: { kind: ev.kind || "edge" } }, body,
      h("span", { class: "small muted" }, ev.content_type.startsWith("video/") ? t("clip") : kindText));
  }));
}

/** Who read this incident's evidence: every read is in the audit chain (central/evidence/access.py). */
function readsTable(rows) {
  if (!rows.length) return h("p", { class: "muted" }, t("none"));
  return h("table", { class: "reads" },
    h("thead", {}, h("tr", {}, [t("at"), t("by"), t("variant"), t("reason")].map((x) => h("th", { scope: "col" }, x)))),
    h("tbody", {}, rows.map((r) => h("tr", { dataset: { variant: r.variant } },
      h("td", {}, fmtTime(r.at)), h("td", {}, `${r.username} (${label("role", r.role)})`),
      h("td", {}, t(`variant_${r.variant}`)), h("td", {}, r.reason ?? "—")))));
}

function historyTable(rows) {
  if (!rows.length) return h("p", { class: "muted" }, t("none"));
  return h("table", { class: "history" },
    h("thead", {}, h("tr", {}, [t("at"), t("by"), t("actions"), t("from_to"), t("reason")].map((x) => h("th", { scope: "col" }, x)))),
    h("tbody", {}, rows.map((r) => h("tr", { dataset: { action: r.action } },
      h("td", {}, fmtTime(r.at)), h("td", {}, r.actor ?? "—"), h("td", {}, t(`act_${r.action}`) === `act_${r.action}` ? r.action : t(`act_${r.action}`)),
      h("td", {}, `${label("state", r.from_state)} → ${label("state", r.to_state)}`), h("td", {}, r.reason ?? "")))));
}

function feedbackList(detail) {
  const items = detail.feedback ?? [];
  if (!items.length) return null;
  return h("section", { class: "card" }, h("h3", {}, t("feedback")),
    h("ul", { class: "plain" }, items.map((f) => h("li", { class: "feedback-item" },
      h("p", {}, h("strong", {}, f.actor), ` · ${fmtTime(f.at)}`), h("p", {}, f.note),
      h("div", { class: "row" }, (f.photos ?? []).map((sha) => snapshotFigure(sha, { alt: `${t("photos")} ${sha.slice(0, 8)}`, cls: "thumb" })))))));
}

function checksList(detail) {
  const items = detail.checks ?? [];
  if (!items.length) return null;
  const verdict = (c) => {
    if (c.status === "error") return h("strong", { class: "error" }, `${t("error")}: ${(c.errors ?? []).join("; ")}`);
    if (c.present === true) return h("strong", { class: "error" }, t("check_still_there"));
    if (c.present === false) return h("strong", { class: "ok" }, t("check_clear"));
    return h("span", { class: "muted" }, t("check_waiting"));
  };
  return h("section", { class: "card" }, h("h3", {}, t("checks")),
    h("ul", { class: "plain" }, items.map((c) => h("li", { class: "check-item", dataset: { present: String(c.present), status: c.status } },
      `${fmtTime(c.sent_at)} · ${c.mode === "auto" ? t("check_auto") : t("check_person")} · ${c.actor} · `, verdict(c),
      c.snapshot_sha256 ? snapshotFigure(c.snapshot_sha256, { alt: t("checks"), cls: "thumb" }) : null))));
}

/** What the edge did to its actuators for this incident; a run of renewals shows as one line. */
function actuationsList(detail, redraw) {
  const items = detail.actuations ?? [];
  if (!items.length) return null;
  const lines = [];
  for (const a of items) {
    const last = lines.at(-1);
    if (a.action === "rearm" && a.ok && last && last.actuator === a.actuator && (last.action === "hold" || last.action === "rearm") && last.ok) {
      last.rearms = (last.rearms ?? 0) + 1;
      continue;
    }
    lines.push({ ...a });
  }
  return h("section", { class: "card", id: "actuations" }, h("h3", {}, t("actuations")),
    detail.holding?.length ? h("p", { id: "holding-now" }, h("strong", { class: "error" }, `${t("holding_now")}: ${detail.holding.join(", ")}`)) : null,
    detail.can_release_hold ? releaseForm("release-hold", (reason) => api.releaseIncidentHold(detail.id, reason), redraw) : null,
    h("ul", { class: "plain" }, lines.map((a) => h("li", { class: "actuation-item", dataset: { action: a.action, ok: String(a.ok), reason: a.reason ?? "" } },
      `${fmtTime(a.at)} · ${a.actuator} · `, h("strong", { class: a.ok ? "" : "error" }, t(`act_${a.action}`)),
      a.reason ? ` · ${t(`hold_reason_${a.reason}`)}` : "",
      a.by ? ` · ${a.by}` : "",
      a.latency_ms != null ? ` · ${t("latency")} ${Math.round(a.latency_ms)} ms` : "",
      a.rearms ? ` · ${t("rearms")} ×${a.rearms}` : "",
      a.ok ? "" : ` · ${t("error")}: ${a.error ?? ""}`))));
}

export async function render(ctx) {
  const id = ctx.params[0];
  const [cameras, choices] = await Promise.all([camerasById(), dispatchChoices()]);
  const el = h("div", { class: "incident" });

  async function draw() {
    const labeller = DESK_ROLES.includes(ctx.me.role);
    const [detail, hist, reads, labels] = await Promise.all([api.incident(id), api.history(id).catch(() => []),
      api.incidentReads(id).catch(() => []), labeller ? api.incidentLabels(id).catch(() => null) : null]);
    fill(el, 
      h("p", {}, h("a", { href: ctx.me.role === "grid_worker" || ctx.me.role === "unit" ? "#/tasks" : "#/monitor" }, `← ${t("back")}`)),
      h("h2", {}, `${hazardTitle(detail)} #${detail.id}`),
      h("div", { class: "split wide" },
        h("section", { class: "card" }, h("h3", {}, t("evidence")), gallery(detail, cameras)),
        h("section", { class: "card" },
          h("dl", { class: "facts" },
            h("dt", {}, t("state")), h("dd", { id: "incident-state", dataset: { state: detail.state } }, stateBadge(detail)),
            h("dt", {}, t("condition")), h("dd", { class: `cond-${detail.condition}` }, label("condition", detail.condition)),
            detail.source === "open311"
              ? [h("dt", {}, t("address")), h("dd", {}, detail.address ?? "—"), h("dt", {}, t("description")), h("dd", {}, detail.description ?? "—")]
              : [h("dt", {}, t("camera")), h("dd", {}, `${detail.camera} / ${detail.zone ?? "—"}`)],
            h("dt", {}, t("grid_cell")), h("dd", {}, detail.grid_cell ?? "—"),
            h("dt", {}, t("started")), h("dd", {}, fmtTime(detail.started_at)),
            h("dt", {}, t("lasted")), h("dd", {}, fmtDuration(lastedSeconds(detail))),
            h("dt", {}, t("assignee")), h("dd", {}, detail.assigned_worker || detail.assigned_unit || "—"),
            h("dt", {}, t("deadline")), h("dd", {}, deadlineBadge(detail), detail.stage ? ` ${label("stage", detail.stage)}` : ""),
            h("dt", {}, t("supervised")), h("dd", {}, detail.supervised ? `${t("supervised")} · ${t("escalation")} ${detail.escalation_level ?? 0}` : "—"),
            h("dt", {}, t("rework")), h("dd", {}, String(detail.rework_count ?? 0)),
            h("dt", {}, t("episodes")), h("dd", {}, String(detail.episode_count ?? 1)),
            detail.close_reason ? [h("dt", {}, t("close_reason")), h("dd", {}, label("close_reason", detail.close_reason))] : null),
          h("h3", {}, t("actions")),
          actionButtons(detail, () => draw(), choices))),
      feedbackList(detail),
      checksList(detail),
      actuationsList(detail, () => draw()),
      labels ? boxEditor(detail.id, labels) : null,
      h("section", { class: "card" }, h("h3", {}, t("history")), historyTable(hist.filter((r) => r.action !== "evidence_read"))),
      h("section", { class: "card", id: "who-looked" }, h("h3", {}, t("who_looked")), readsTable(reads)),
    );
  }

  ctx.onLive(() => draw().catch(() => {}));
  await draw();
  return { el };
}
