// Pieces shared by several pages: evidence with the zone drawn over it, badges, and the action dialog.

import * as api from "./api.js";
import { h, s, toast, announce } from "./dom.js";
import { t, label, fmtDuration, fmtTime } from "./i18n.js";

let sitesCache = null;

/** Camera id -> {zones, edge, site, latest_snapshot_sha256, health…}; empty when the role may not read /sites. */
export async function camerasById() {
  if (!sitesCache) {
    sitesCache = api.sites().then(
      (sites) => {
        const map = new Map();
        for (const site of sites) for (const edge of site.edges) for (const cam of edge.cameras) map.set(cam.id, { ...cam, edge: edge.id, site: site.site });
        return map;
      },
      () => new Map(),
    );
    // Zones change when an operator pushes new ones; do not keep them for long.
    setTimeout(() => { sitesCache = null; }, 60000);
  }
  return sitesCache;
}

export function forgetCameras() {
  sitesCache = null;
}

/**
 * The original of a piece of evidence, for desk roles: a reason first (it is recorded in the
 * incident's audit), then the unredacted image or the video clip in place of the form.
 */
export function originalRequest(sha, { video = false, alt = "" } = {}) {
  if (!api.isDesk()) return h("p", { class: "small muted" }, video ? t("clip_desk_only") : "");
  const reason = h("input", { type: "text", required: true, minlength: 4, maxlength: 500, "aria-label": t("original_reason"), placeholder: t("original_reason") });
  const form = h("form", { class: "original-request", dataset: { video: String(video) } }, reason, h("button", { type: "submit" }, video ? t("play_clip") : t("show_original")));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const why = reason.value.trim();
    if (why.length < 4) return;
    const src = api.evidenceUrl(sha, why);
    form.replaceWith(video ? h("video", { src, controls: true, preload: "metadata", "aria-label": t("clip") }) : h("img", { src, alt: `${alt} (${t("original")})` }));
  });
  return form;
}

/** A snapshot with the zone polygon and the detected boxes over it, in normalised coordinates. */
export function snapshotFigure(sha, { zone = null, boxes = [], alt = "", caption = null, cls = "", empty = null } = {}) {
  const frame = h("div", { class: "frame" });
  if (sha) {
    const img = h("img", { src: api.evidenceUrl(sha), alt, loading: "lazy", decoding: "async" });
    img.addEventListener("error", () => img.replaceWith(h("div", { class: "noimg" }, t("pending_upload"))));
    frame.append(img);
  } else {
    frame.append(h("div", { class: "noimg" }, empty ?? t("no_snapshot")));
  }
  const overlay = s("svg", { class: "overlay", viewBox: "0 0 1 1", preserveAspectRatio: "none", "aria-hidden": "true" });
  if (zone?.polygon?.length) {
    overlay.append(s("polygon", { class: `zone zone-${zone.kind || "x"}`, points: zone.polygon.map((p) => p.join(",")).join(" ") }));
  }
  for (const box of boxes) {
    const [x1, y1, x2, y2] = box.box;
    overlay.append(s("rect", { class: "box", x: x1, y: y1, width: x2 - x1, height: y2 - y1 }));
  }
  frame.append(overlay);
  return h("figure", { class: `snap ${cls}` }, frame, caption ? h("figcaption", {}, caption) : null);
}

export function stateBadge(incident) {
  return h("span", { class: `badge state-${incident.state}` }, label("state", incident.state));
}

export function deadlineBadge(incident) {
  const color = incident.deadline_color;
  if (!color) return h("span", { class: "badge muted" }, "—");
  const left = incident.stage_deadline_at ? (new Date(incident.stage_deadline_at) - Date.now()) / 1000 : null;
  // Overdue reads "overdue 5 min", not a negative time left.
  const text = left === null ? label("color", color) : `${label("color", color)} · ${fmtDuration(Math.abs(left))}`;
  return h("span", { class: `badge deadline-${color}`, title: `${t("deadline")}: ${incident.stage_deadline_at || "—"}` }, text);
}

export function lastedSeconds(incident) {
  const end = incident.condition === "active" || !incident.ended_at ? Date.now() : new Date(incident.ended_at);
  return (end - new Date(incident.started_at)) / 1000;
}

export function hazardTitle(incident) {
  return label("hazard", incident.hazard);
}

export function zoneOf(cameras, incident) {
  return cameras.get(incident.camera)?.zones?.find((z) => z.id === incident.zone) ?? null;
}

export function latestBoxes(detail) {
  const events = detail?.events ?? [];
  for (let i = events.length - 1; i >= 0; i--) if (events[i].objects?.length) return events[i].objects;
  return [];
}

// What each action asks for before it is sent; the API checks it again.
const FIELDS = {
  confirm: [{ name: "reason" }],
  dismiss: [{ name: "reason", required: true }],
  dispatch: [{ name: "worker", kind: "worker" }, { name: "unit", kind: "unit" }, { name: "reason" }],
  accept: [],
  return: [{ name: "reason", required: true }],
  feedback: [{ name: "note", required: true, kind: "textarea" }, { name: "photos", kind: "photos" }],
  check: [{ name: "mode", kind: "select", options: [["auto", "check_auto"], ["person", "check_person"]] }],
  pass: [{ name: "reason" }],
  fail: [{ name: "reason", required: true }],
  close: [
    { name: "close_reason", kind: "select", options: [["forced", "close_reason"], ["transferred", "close_reason"], ["duplicate", "close_reason"]], enumLabel: "close_reason" },
    { name: "reason", required: true },
  ],
  merge: [{ name: "target_id", required: true, kind: "number", text: "merge_target" }, { name: "reason" }],
  supervise: [{ name: "reason" }],
};

// Actions that are sent at once from a button; the others open a dialog.
const DIRECT = new Set(["accept"]);

export function actionLabel(action) {
  return t(`act_${action}`);
}

function fieldInput(field, id, { workers = [], units = [] }) {
  const common = { id, name: field.name, required: field.required || null };
  if (field.kind === "textarea") return h("textarea", { ...common, rows: 3 });
  if (field.kind === "number") return h("input", { ...common, type: "number", min: 1 });
  if (field.kind === "select") {
    return h("select", common, field.options.map(([value, key]) => h("option", { value }, field.enumLabel ? label(field.enumLabel, value) : t(key))));
  }
  if (field.kind === "photos") return h("input", { ...common, type: "file", accept: "image/*", capture: "environment", multiple: true });
  if (field.kind === "worker") {
    return h("select", common, h("option", { value: "" }, t("auto_assign")), workers.map((w) => h("option", { value: w }, w)));
  }
  if (field.kind === "unit") {
    return h("select", common, h("option", { value: "" }, "—"), units.map((u) => h("option", { value: u.id }, `${u.name} (${u.kind})`)));
  }
  return h("input", { ...common, type: "text", autocomplete: "off" });
}

/** Collect the dialog's values into the action's JSON body, uploading photos first. */
async function bodyFrom(form, fields) {
  const body = {};
  for (const field of fields) {
    const input = form.elements[field.name];
    if (field.kind === "photos") {
      const shas = [];
      for (const file of input.files) shas.push((await api.upload(file)).sha256);
      if (shas.length) body.photos = shas;
    } else if (input.value !== "") {
      body[field.name] = field.kind === "number" ? Number(input.value) : input.value;
    }
  }
  return body;
}

/**
 * Run one action on an incident: directly, or after a dialog asking for what it needs.
 * Resolves to the updated incident, or null when the user cancelled.
 */
export async function runAction(incident, action, choices = {}) {
  const fields = FIELDS[action] ?? [];
  if (DIRECT.has(action) || fields.length === 0) return send(incident, action, {});
  return new Promise((resolve) => {
    const error = h("p", { class: "error", role: "alert" });
    const form = h("form", { method: "dialog", class: "stack" });
    form.append(h("h3", {}, `${actionLabel(action)} · #${incident.id} ${hazardTitle(incident)}`));
    for (const field of fields) {
      const id = `act-${action}-${field.name}`;
      const text = field.text ? t(field.text) : t(field.name);
      form.append(h("label", { for: id }, text, field.required ? " *" : ""), fieldInput(field, id, choices));
    }
    const submit = h("button", { type: "submit", class: "primary", value: "ok" }, actionLabel(action));
    const cancel = h("button", { type: "button", value: "cancel" }, t("cancel"));
    form.append(error, h("div", { class: "row" }, submit, cancel));
    const dialog = h("dialog", { class: "card", "aria-label": actionLabel(action) }, form);
    document.body.append(dialog);
    const finish = (value) => { dialog.close(); dialog.remove(); resolve(value); };
    cancel.addEventListener("click", () => finish(null));
    dialog.addEventListener("cancel", (ev) => { ev.preventDefault(); finish(null); });
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      submit.disabled = true;
      error.textContent = "";
      try {
        const body = await bodyFrom(form, fields);
        finish(await send(incident, action, body));
      } catch (err) {
        error.textContent = `${t("action_failed")}: ${err.message}`;
        submit.disabled = false;
      }
    });
    dialog.showModal();
    form.querySelector("input, textarea, select")?.focus();
  });
}

async function send(incident, action, body) {
  try {
    const updated = await api.act(incident.id, action, body);
    const text = `${actionLabel(action)} #${incident.id}: ${label("state", updated.state)}`;
    toast(text);
    announce(text);
    return updated;
  } catch (err) {
    const allowed = err.detail?.allowed ? ` (${err.detail.allowed.map(actionLabel).join(", ")})` : "";
    toast(`${t("action_failed")}: ${err.message}${allowed}`, "error");
    throw err;
  }
}

/** Buttons for the actions this user may take now (the API's allowed_actions). */
export function actionButtons(incident, onDone, opts = {}) {
  const allowed = incident.allowed_actions ?? [];
  if (!allowed.length) return h("p", { class: "muted" }, t("no_actions"));
  return h(
    "div",
    { class: "actions", role: "group", "aria-label": t("actions") },
    allowed.map((action) =>
      h("button", {
        type: "button",
        class: action === "dismiss" || action === "fail" || action === "close" ? "danger" : "primary",
        dataset: { action },
        onclick: async () => {
          try {
            const updated = await runAction(incident, action, opts);
            if (updated) onDone(updated);
          } catch {
            /* already shown */
          }
        },
      }, actionLabel(action)),
    ),
  );
}

/** Workers (from the grid tree) and units, for the dispatch override. */
export async function dispatchChoices() {
  const [nodes, units] = await Promise.all([api.grid().catch(() => []), api.units().catch(() => [])]);
  return { workers: [...new Set(nodes.flatMap((n) => n.workers || []))].sort(), units };
}

/** A reason field and a button that sends a release; `send(reason)` returns the API's promise. */
export function releaseForm(id, send, done) {
  const input = h("input", { id: `${id}-reason`, name: "reason", required: true, minlength: 3, maxlength: 500,
    "aria-label": t("release_reason"), placeholder: t("release_reason") });
  const form = h("form", { class: "inline-form release-form", id },
    input, h("button", { type: "submit", class: "danger" }, t("release_hold")));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      await send(input.value.trim());
      toast(t("release_sent"));
      announce(t("release_sent"));
      done?.();
    } catch (err) {
      toast(`${t("action_failed")}: ${err.message}`, "error");
    }
  });
  return form;
}

/** Each edge's actuators (relay coils, camera outputs, speakers) as their newest record leaves them. */
export function actuatorsTable(sites, redraw) {
  const rows = [];
  for (const site of sites) {
    for (const edge of site.edges) {
      for (const a of edge.actuators ?? []) {
        const where = a.camera ? `${a.camera} / ${a.zone}` : "—";
        rows.push(h("tr", { dataset: { actuator: a.id, state: a.state } },
          h("th", { scope: "row" }, a.name ? `${a.name} (${a.id})` : a.id), h("td", {}, edge.id), h("td", {}, a.kind),
          h("td", {}, h("span", { class: `badge actuator-${a.state}` }, t(`actuator_${a.state}`))),
          h("td", {}, where), h("td", { class: "small" }, a.state === "failing" ? a.error ?? "" : a.since ? fmtTime(a.since) : ""),
          h("td", {}, a.state === "held"
            ? releaseForm(`release-${a.id}`, (reason) => api.releaseActuator(edge.id, a.id, reason), redraw) : null)));
      }
    }
  }
  if (!rows.length) return h("p", { class: "muted" }, t("none"));
  return h("table", { id: "actuators" },
    h("thead", {}, h("tr", {}, [t("actuators"), t("edge"), "kind", t("state"), t("camera"), t("since"), ""]
      .map((x) => h("th", { scope: "col" }, x)))),
    h("tbody", {}, rows));
}
