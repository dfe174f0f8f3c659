// The inventory: every edge's drift (desired against applied configuration, since when and why), the
// searchable, paged camera list (central searches and pages: it stays one indexed query at 30,000
// cameras), and for admins adding, editing, moving and retiring cameras and edges. Every change is a
// new version of the edge's configuration that central stores and sends; removals are confirmed
// against central's own list (removal.js), and a refused field is marked where it is typed.

import * as api from "../api.js";
import { announce, fill, h, toast } from "../dom.js";
import { t, fmtTime } from "../i18n.js";
import { guardedChange } from "../removal.js";

const PAGE_SIZE = 50;
const DEBOUNCE_MS = 250;
const DRIFT_POLL_MS = 5000;
const IMPORT_COMMAND = "sharpeyes central inventory import FILE";

// The form's fields, with the key central names them by in a camera's configuration.
const FIELDS = [
  { name: "edge", key: "edge", label: "edge", type: "select", required: true },
  { name: "id", key: "id", label: "camera_id", required: true, pattern: "[a-z0-9\\-]+", placeholder: "gate-3" },
  { name: "name", key: "name", label: "name", placeholder: "3号楼东门" },
  { name: "url", key: "url", label: "url_ref", required: true, placeholder: "rtsp://${CAM_URL}", help: "url_help" },
  { name: "channel_id", key: "gb28181_channel_id", label: "channel_id", pattern: "\\d{20}", inputmode: "numeric" },
  { name: "grid_cell", key: "grid_cell", label: "grid_cell" },
  { name: "lon", key: "location.lon", label: "lon", type: "number", step: "any" },
  { name: "lat", key: "location.lat", label: "lat", type: "number", step: "any" },
  { name: "model", key: "model", label: "model", placeholder: "yolov8n" },
];

function fmt(text, values) {
  return text.replace(/\{(\w+)\}/g, (_, key) => String(values[key] ?? ""));
}

/**
 * Central's 422 `{detail: [{loc, msg}]}` sorted to the form's fields: the configuration key is in
 * `loc` (["body", "camera", "id"]) or at the start of the message ("…cameras[0].location.lon: …").
 * Returns { byField: {name: [msg]}, rest: [msg] }.
 */
export function fieldErrors(detail) {
  const byField = {};
  const rest = [];
  const byKey = new Map(FIELDS.map((f) => [f.key, f.name]));
  for (const item of Array.isArray(detail) ? detail : [{ loc: [], msg: String(detail) }]) {
    const msg = String(item?.msg ?? item);
    const loc = (item?.loc ?? []).filter((x) => x !== "body");
    let name = null;
    const inMsg = msg.match(/cameras\[\d+\]\.([\w.]+): /);
    if (inMsg) {
      const key = inMsg[1];
      name = byKey.get(key) ?? (key === "location" ? "lon" : null);
    } else if (loc[0] === "camera" && loc.length > 1) {
      name = byKey.get(loc.slice(1).join(".")) ?? null;
    } else if (loc[0] === "edge" || loc[0] === "grid_cell") {
      name = loc[0];
    }
    const text = inMsg ? msg.slice(msg.indexOf(inMsg[0]) + inMsg[0].length) : msg;
    if (name) (byField[name] ??= []).push(text);
    else rest.push(msg);
  }
  return { byField, rest };
}

function errorText(err) {
  if (Array.isArray(err.detail)) return err.detail.map((d) => d.msg).join("; ");
  return err.message;
}

/** A modal dialog holding a form; `close()` removes it. */
function modal(id, titleText, body) {
  const dialog = h("dialog", { class: "card wide-dialog", id, "aria-labelledby": `${id}-title` },
    h("h3", { id: `${id}-title` }, titleText), body);
  document.body.append(dialog);
  dialog.addEventListener("close", () => dialog.remove());
  dialog.showModal();
  return dialog;
}

/** The add and edit form: one input per field, each with its own error line. */
function cameraForm({ edges, camera = null, onDone }) {
  const editing = camera !== null;
  const inputs = {};
  const errors = {};
  const rows = FIELDS.map((f) => {
    const id = `cf-${f.name}`;
    const errId = `${id}-error`;
    const helpId = f.help ? `${id}-help` : null;
    let input;
    if (f.type === "select") {
      input = h("select", { id, name: f.name, required: f.required, disabled: editing },
        edges.map((e) => h("option", { value: e, selected: camera?.edge === e }, e)));
    } else {
      input = h("input", {
        id, name: f.name, type: f.type ?? "text", required: f.required && !editing, pattern: f.pattern, step: f.step,
        inputmode: f.inputmode, placeholder: f.placeholder, autocomplete: "off", spellcheck: false,
        disabled: editing && f.name === "id",
      });
    }
    input.setAttribute("aria-describedby", [errId, helpId].filter(Boolean).join(" "));
    inputs[f.name] = input;
    errors[f.name] = h("span", { id: errId, class: "field-error error small", dataset: { field: f.name } });
    return h("div", { class: "field", dataset: { field: f.name } },
      h("label", { for: id }, t(f.label)), input,
      helpId ? h("span", { id: helpId, class: "muted small" }, t(f.help)) : null, errors[f.name]);
  });
  if (editing) {
    const values = { id: camera.id, name: camera.name, url: camera.url, channel_id: camera.channel_id, grid_cell: camera.grid_cell,
      lon: camera.lon, lat: camera.lat, model: camera.model };
    for (const [name, value] of Object.entries(values)) if (value !== null && value !== undefined) inputs[name].value = value;
  }
  const reason = h("input", { id: "cf-reason", name: "reason", maxlength: 500, autocomplete: "off" });
  const formError = h("div", { id: "camera-form-error", class: "error", role: "alert" });
  const submit = h("button", { type: "submit", class: "primary", id: "cf-submit" }, t("save"));
  const cancel = h("button", { type: "button", id: "cf-cancel" }, t("cancel"));
  const form = h("form", { id: "camera-form", class: "form-grid", novalidate: true }, rows,
    h("div", { class: "field" }, h("label", { for: "cf-reason" }, t("change_reason")), reason),
    formError, h("div", { class: "row" }, submit, cancel));
  const dialog = modal("camera-dialog", editing ? `${t("edit_camera")} · ${camera.id}` : t("add_camera"), form);
  cancel.addEventListener("click", () => dialog.close());

  function showErrors(byField, rest) {
    for (const [name, span] of Object.entries(errors)) {
      const list = byField[name] ?? [];
      span.textContent = list.join("; ");
      inputs[name].setAttribute("aria-invalid", list.length ? "true" : "false");
    }
    fill(formError, rest.length || Object.keys(byField).length
      ? [h("p", {}, t("form_errors")), rest.length ? h("ul", {}, rest.map((m) => h("li", {}, m))) : null] : null);
    const first = FIELDS.find((f) => byField[f.name]?.length);
    if (first) inputs[first.name].focus();
  }

  /** The camera's configuration keys from the form: blank fields are left out (an edit leaves them as they are). */
  function body() {
    const v = (name) => inputs[name].value.trim();
    const out = {};
    if (!editing) out.id = v("id");
    for (const [name, key] of [["name", "name"], ["url", "url"], ["channel_id", "gb28181_channel_id"], ["grid_cell", "grid_cell"], ["model", "model"]]) {
      if (v(name)) out[key] = v(name);
    }
    if (v("lon") || v("lat")) {
      out.location = {};
      if (v("lon")) out.location.lon = Number(v("lon"));
      if (v("lat")) out.location.lat = Number(v("lat"));
    }
    return out;
  }

  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const missing = {};
    for (const f of FIELDS) if (inputs[f.name].required && !inputs[f.name].value.trim()) missing[f.name] = [t("required")];
    if (Object.keys(missing).length) {
      showErrors(missing, []);
      return;
    }
    submit.disabled = true;
    const extra = reason.value.trim() ? { reason: reason.value.trim() } : {};
    try {
      const done = editing
        ? await guardedChange({ send: (more) => api.editCamera(camera.id, body(), { ...extra, ...more }), verb: "verb_save" })
        : await api.addCamera(inputs.edge.value, body(), extra);
      if (!done) return;
      dialog.close();
      onDone(done, editing ? camera.id : body().id);
    } catch (err) {
      if (err.status === 422) {
        const { byField, rest } = fieldErrors(err.detail);
        showErrors(byField, rest);
      } else if (err.status === 409 && !editing) {
        showErrors({ id: [errorText(err)] }, []); // the id is already a camera of the site
      } else {
        showErrors({}, [errorText(err)]);
      }
    } finally {
      submit.disabled = false;
    }
  });
  inputs[editing ? "name" : "edge"].focus();
}

/** Move a camera to another edge, another grid cell, or both. */
function moveForm({ camera, edges, onDone }) {
  const edge = h("select", { id: "mv-edge", name: "edge" }, edges.map((e) => h("option", { value: e, selected: e === camera.edge }, e)));
  const grid = h("input", { id: "mv-grid", name: "grid_cell", value: camera.grid_cell ?? "", autocomplete: "off" });
  const reason = h("input", { id: "mv-reason", name: "reason", maxlength: 500, autocomplete: "off" });
  const formError = h("div", { id: "move-form-error", class: "error", role: "alert" });
  const submit = h("button", { type: "submit", class: "primary", id: "mv-submit" }, t("move"));
  const cancel = h("button", { type: "button", id: "mv-cancel" }, t("cancel"));
  const form = h("form", { id: "move-form", class: "form-grid" },
    h("p", { class: "small muted" }, t("move_help")),
    h("div", { class: "field" }, h("label", { for: "mv-edge" }, t("edge")), edge),
    h("div", { class: "field" }, h("label", { for: "mv-grid" }, t("grid_cell")), grid),
    h("div", { class: "field" }, h("label", { for: "mv-reason" }, t("change_reason")), reason),
    formError, h("div", { class: "row" }, submit, cancel));
  const dialog = modal("move-dialog", fmt(t("move_camera"), { camera: camera.id }), form);
  cancel.addEventListener("click", () => dialog.close());
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const body = {};
    if (edge.value !== camera.edge) body.edge = edge.value;
    if (grid.value.trim() && grid.value.trim() !== camera.grid_cell) body.grid_cell = grid.value.trim();
    if (reason.value.trim()) body.reason = reason.value.trim();
    submit.disabled = true;
    try {
      const done = await api.moveCamera(camera.id, body);
      dialog.close();
      onDone(done, camera.id);
    } catch (err) {
      fill(formError, errorText(err));
    } finally {
      submit.disabled = false;
    }
  });
  edge.focus();
}

function savedText(done, what) {
  const others = (done.also ?? []).map((a) => `${a.edge} v${a.version}`);
  return `${what}: ${t("saved_version")} ${done.edge} v${done.version}${others.length ? `, ${others.join(", ")}` : ""}`;
}

/** Every edge's desired and applied configuration; drifting edges first in the eye (class and badge). */
function driftTable(rows, admin, onRetire) {
  if (!rows.length) return h("p", { class: "muted" }, t("none"));
  const drifting = rows.filter((r) => !r.in_sync).length;
  return [
    h("p", { id: "drift-summary", class: drifting ? "error" : "ok", dataset: { drifting } },
      drifting ? fmt(t("drift_count"), { n: drifting }) : `✓ ${t("all_in_sync")}`),
    h("table", { id: "edge-drift" },
      h("thead", {}, h("tr", {}, [t("edge"), t("state"), t("desired_version"), t("applied_version_short"), t("applied_at"),
        t("drift_since"), t("problems"), t("last_heartbeat"), admin ? t("actions") : null].filter((x) => x !== null)
        .map((x) => h("th", { scope: "col" }, x)))),
      h("tbody", {}, rows.map((r) => h("tr", { class: r.in_sync ? "" : "drifting", dataset: { edge: r.edge, inSync: String(r.in_sync) } },
        h("th", { scope: "row" }, r.edge),
        h("td", {}, h("span", { class: `badge ${r.in_sync ? "health-online" : "health-offline"}` }, r.in_sync ? `✓ ${t("in_sync")}` : `✗ ${t("drifting")}`)),
        h("td", { class: "desired" }, r.desired_version ?? "—"),
        h("td", { class: "applied" }, r.applied_version ?? "—"),
        h("td", { class: "small" }, fmtTime(r.applied_at)),
        h("td", { class: "small since" }, fmtTime(r.drift_since)),
        h("td", { class: "small problems" }, r.problems.length ? h("ul", { class: "plain-list" }, r.problems.map((p) => h("li", {}, p))) : "—"),
        h("td", { class: "small" }, fmtTime(r.last_heartbeat_at)),
        admin ? h("td", {}, h("button", { type: "button", class: "danger", dataset: { retireEdge: r.edge },
          "aria-label": `${t("retire")} ${r.edge}`, onclick: () => onRetire(r.edge) }, t("retire"))) : null)))),
  ];
}

/** The site file's edges that differ from the database: shown, with the command that applies the file. */
function fileNotice(differences) {
  if (!differences?.length) return null;
  return h("section", { class: "card notice", id: "file-differences", role: "note" },
    differences.map((d) => h("div", { dataset: { edge: d.edge } },
      h("h3", {}, fmt(t("file_differs"), { edge: d.edge })),
      (d.changes ?? []).length ? h("ul", { class: "small" }, d.changes.map((c) => h("li", {}, c))) : null,
      h("p", { class: "small" }, t("file_differs_help"), " ", h("code", {}, IMPORT_COMMAND)))));
}

export async function render(ctx) {
  const admin = ctx.me.role === "admin";
  const state = { q: "", edge: "", grid: "", retired: false, offset: 0, drift: [], seq: 0 };
  const el = h("div", { class: "inventory" });
  const noticeBox = h("div", { id: "file-notice" });
  const driftBox = h("div", { id: "drift-box", "aria-live": "polite" });
  const listBox = h("div", { id: "camera-list-box" });
  const count = h("p", { id: "camera-count", role: "status", class: "small" });
  const prev = h("button", { type: "button", id: "page-prev", onclick: () => page(-1) }, t("prev_page"));
  const next = h("button", { type: "button", id: "page-next", onclick: () => page(1) }, t("next_page"));

  const search = h("input", { id: "cam-q", name: "q", type: "search", maxlength: 100, autocomplete: "off", placeholder: t("search_help"),
    "aria-describedby": "cam-q-help" });
  const edgeFilter = h("select", { id: "cam-edge", name: "edge" }, h("option", { value: "" }, t("all_edges")));
  const gridFilter = h("input", { id: "cam-grid", name: "grid", maxlength: 64, autocomplete: "off", placeholder: "110101001001" });
  const retiredFilter = h("input", { id: "cam-retired", name: "retired", type: "checkbox" });
  const filters = h("form", { id: "camera-filters", class: "inline-form", role: "search" },
    h("label", { for: "cam-q" }, t("search")), search, h("span", { id: "cam-q-help", class: "sr-only" }, t("search_help")),
    h("label", { for: "cam-edge" }, t("edge")), edgeFilter,
    h("label", { for: "cam-grid" }, t("grid_cell")), gridFilter,
    retiredFilter, h("label", { for: "cam-retired" }, t("retired_only")),
    admin ? h("button", { type: "button", class: "primary", id: "add-camera", onclick: () => openAdd() }, t("add_camera")) : null);
  filters.addEventListener("submit", (ev) => { ev.preventDefault(); reload(); });

  let timer = null;
  const debounced = () => {
    clearTimeout(timer);
    timer = setTimeout(reload, DEBOUNCE_MS);
  };
  search.addEventListener("input", debounced);
  gridFilter.addEventListener("input", debounced);
  edgeFilter.addEventListener("change", reload);
  retiredFilter.addEventListener("change", reload);

  function reload() {
    clearTimeout(timer);
    state.offset = 0;
    return drawList();
  }

  function page(step) {
    state.offset = Math.max(0, state.offset + step * PAGE_SIZE);
    drawList();
  }

  const edgeIds = () => state.drift.map((r) => r.edge);

  function afterChange(done, what) {
    const text = savedText(done, what);
    toast(text);
    announce(text);
    drawList();
    drawDrift();
  }

  function openAdd() {
    cameraForm({ edges: edgeIds(), onDone: (done, id) => afterChange(done, id) });
  }

  async function retireCamera(camera) {
    try {
      const done = await guardedChange({ send: (extra) => api.retireCamera(camera.id, extra), verb: "verb_retire",
        expected: [camera.id] });
      if (done) afterChange(done, `${t("retire")} ${camera.id}`);
    } catch (err) {
      toast(`${t("action_failed")}: ${errorText(err)}`, "error");
    }
  }

  async function retireEdge(edge) {
    try {
      const done = await guardedChange({
        send: (extra) => api.retireEdge(edge, extra),
        verb: "verb_retire",
        intro: { children: [h("h3", { id: "ccd-title" }, fmt(t("retire_edge_title"), { edge })), h("p", { class: "small" }, t("retire_edge_help"))],
          submit: t("retire") },
      });
      if (done) afterChange(done, `${t("retire")} ${edge}`);
    } catch (err) {
      toast(`${t("action_failed")}: ${errorText(err)}`, "error");
    }
  }

  function cameraRow(c) {
    const actions = [];
    if (admin && !c.retired_at) {
      actions.push(
        h("a", { href: `#/zones/${encodeURIComponent(c.id)}`, class: "button", "aria-label": `${t("edit_zones")} ${c.id}` }, t("edit_zones")),
        h("button", { type: "button", dataset: { edit: c.id }, "aria-label": `${t("edit")} ${c.id}`,
          onclick: () => cameraForm({ edges: edgeIds(), camera: c, onDone: (done, id) => afterChange(done, id) }) }, t("edit")),
        h("button", { type: "button", dataset: { move: c.id }, "aria-label": `${t("move")} ${c.id}`,
          onclick: () => moveForm({ camera: c, edges: edgeIds(), onDone: (done, id) => afterChange(done, `${t("move")} ${id}`) }) }, t("move")),
        h("button", { type: "button", class: "danger", dataset: { retire: c.id }, "aria-label": `${t("retire")} ${c.id}`,
          onclick: () => retireCamera(c) }, t("retire")));
    }
    return h("tr", { dataset: { camera: c.id, edge: c.edge, grid: c.grid_cell ?? "" } },
      h("th", { scope: "row" }, c.id), h("td", {}, c.name ?? "—"), h("td", { class: "small" }, c.channel_id ?? "—"),
      h("td", { class: "cam-edge" }, c.edge), h("td", { class: "cam-grid" }, c.grid_cell ?? "—"), h("td", {}, c.model),
      h("td", {}, c.zones), h("td", { class: "small url" }, h("code", {}, c.url)),
      state.retired ? h("td", { class: "small" }, fmtTime(c.retired_at)) : null,
      admin ? h("td", {}, h("div", { class: "row" }, actions)) : null);
  }

  async function drawList() {
    const seq = ++state.seq;
    state.q = search.value.trim();
    state.edge = edgeFilter.value;
    state.grid = gridFilter.value.trim();
    state.retired = retiredFilter.checked;
    listBox.setAttribute("aria-busy", "true");
    let data;
    try {
      data = await api.cameras({ q: state.q, edge: state.edge, grid: state.grid, retired: state.retired ? "true" : undefined,
        limit: PAGE_SIZE, offset: state.offset });
    } catch (err) {
      if (seq === state.seq) fill(listBox, h("p", { class: "error", role: "alert" }, `${t("error")}: ${errorText(err)}`));
      return;
    } finally {
      if (seq === state.seq) listBox.removeAttribute("aria-busy");
    }
    if (seq !== state.seq) return; // a later search answered first: show only the newest
    const from = data.total ? state.offset + 1 : 0;
    const to = state.offset + data.items.length;
    count.textContent = data.total ? fmt(t("page_info"), { from, to, total: data.total }) : t("no_cameras");
    count.dataset.total = data.total;
    prev.disabled = state.offset === 0;
    next.disabled = to >= data.total;
    const heads = [t("camera_id"), t("name"), t("channel_id"), t("edge"), t("grid_cell"), t("model"), t("zones_count"), t("url"),
      state.retired ? t("retired_at") : null, admin ? t("actions") : null].filter((x) => x !== null);
    fill(listBox, data.items.length
      ? h("table", { id: "camera-list", dataset: { offset: state.offset } },
        h("thead", {}, h("tr", {}, heads.map((x) => h("th", { scope: "col" }, x)))),
        h("tbody", {}, data.items.map(cameraRow)))
      : null);
  }

  async function drawDrift({ poll = false } = {}) {
    let rows;
    try {
      rows = await api.edgeDrift();
    } catch (err) {
      fill(driftBox, h("p", { class: "error" }, `${t("error")}: ${errorText(err)}`));
      return;
    }
    state.drift = rows;
    const chosen = edgeFilter.value;
    fill(edgeFilter, h("option", { value: "" }, t("all_edges")), rows.map((r) => h("option", { value: r.edge, selected: r.edge === chosen }, r.edge)));
    // A poll leaves the table alone while a control in it has the focus (it must not take it away).
    if (poll && driftBox.contains(document.activeElement)) return;
    fill(driftBox, driftTable(rows, admin, retireEdge));
  }

  function addEdgeForm() {
    const input = h("input", { id: "ne-id", name: "id", required: true, pattern: "[a-z0-9\\-]+", autocomplete: "off", placeholder: "edge-b2",
      "aria-describedby": "ne-error" });
    const error = h("span", { id: "ne-error", class: "error small" });
    const form = h("form", { id: "add-edge", class: "inline-form" },
      h("label", { for: "ne-id" }, t("edge_id")), input, h("button", { type: "submit" }, t("add_edge")), error);
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      error.textContent = "";
      try {
        const done = await api.addEdge({ id: input.value.trim() });
        input.value = "";
        afterChange(done, `${t("add_edge")} ${done.edge}`);
      } catch (err) {
        error.textContent = errorText(err);
        input.focus();
      }
    });
    return form;
  }

  fill(el,
    h("h2", {}, t("inventory_title")),
    noticeBox,
    h("section", { class: "card", id: "edges-card" }, h("h3", {}, t("edges_title")), h("p", { class: "muted small" }, t("edges_help")),
      driftBox, admin ? addEdgeForm() : null),
    h("section", { class: "card", id: "cameras-card" }, h("h3", {}, t("cameras_title")), filters, count, listBox,
      h("nav", { class: "row pager", "aria-label": t("pager") }, prev, next)));

  await Promise.all([
    drawDrift(),
    drawList(),
    admin ? api.inventory().then((inv) => fill(noticeBox, fileNotice(inv.file_differences))).catch(() => {}) : null,
  ]);
  const poll = setInterval(() => drawDrift({ poll: true }).catch(() => {}), DRIFT_POLL_MS);
  return {
    el,
    dispose() {
      clearInterval(poll);
      clearTimeout(timer);
      for (const id of ["camera-dialog", "move-dialog"]) document.getElementById(id)?.remove();
    },
  };
}
