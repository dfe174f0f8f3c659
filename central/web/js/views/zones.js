// The zone editor: draw and edit polygons over the camera's latest snapshot, then push them to its edge
// and show the version the edge applied or the errors it gave. A push that removes zones is confirmed
// first, against central's own list of what it removes and touches (removal.js).

import * as api from "../api.js";
import { fill, h, s, toast, announce } from "../dom.js";
import { t, label } from "../i18n.js";
import { camerasById, forgetCameras } from "../widgets.js";
import { clamp01, fromText, problems, round4, toText } from "../polygon.js";
import { guardedChange } from "../removal.js";

const KINDS = ["fire_lane", "indoor", "occupancy"];
const NUMBER_FIELDS = ["dwell_s", "clear_s", "realarm_s", "min_score"];
const POLL_MS = 500;
const POLL_LIMIT_MS = 30000;

function cleanZone(zone) {
  const out = { id: zone.id, kind: zone.kind, polygon: zone.polygon.map(([x, y]) => [round4(x), round4(y)]) };
  for (const key of NUMBER_FIELDS) if (zone[key] !== null && zone[key] !== undefined && zone[key] !== "") out[key] = Number(zone[key]);
  if (zone.labels?.length) out.labels = zone.labels;
  for (const key of ["name", "min_count", "active_hours"]) if (zone[key] !== null && zone[key] !== undefined) out[key] = zone[key];
  return out;
}

export async function render(ctx) {
  const cameraId = ctx.params[0];
  forgetCameras();
  const camera = (await camerasById()).get(cameraId);
  if (!camera) return { el: h("p", { class: "error", role: "alert" }, `${t("not_found")}: ${cameraId}`) };

  const zones = (camera.zones ?? []).map((z) => ({ ...z, polygon: z.polygon.map((p) => [...p]) }));
  let current = zones.length ? 0 : -1;
  let vertex = -1; // selected vertex of the current zone
  let drawing = false; // the current zone is still open (adding vertices)
  let dirty = false;
  // The zone ids central has for this camera: a push without one of them removes it.
  let savedIds = zones.map((z) => z.id);
  let size = [1280, 720];

  const svg = s("svg", { class: "editor-svg", viewBox: `0 0 ${size[0]} ${size[1]}`, role: "application", "aria-label": t("zone_editor"), tabindex: "0", id: "zone-canvas" });
  const img = camera.latest_snapshot_sha256
    ? h("img", { src: api.evidenceUrl(camera.latest_snapshot_sha256), alt: `${t("snapshot")} ${cameraId}`, id: "zone-snapshot" })
    : h("div", { class: "noimg" }, t("no_snapshot"));
  if (img.tagName === "IMG") img.addEventListener("load", () => { size = [img.naturalWidth, img.naturalHeight]; svg.setAttribute("viewBox", `0 0 ${size[0]} ${size[1]}`); draw(); });
  const stage = h("div", { class: "editor-stage" }, img, svg);
  const list = h("ul", { class: "zone-list", id: "zone-list" });
  const form = h("form", { class: "stack", id: "zone-form" });
  const status = h("div", { id: "push-status", role: "status", "aria-live": "polite" });
  const pushButton = h("button", { type: "button", class: "primary", id: "push-zones", onclick: push }, t("push_to_edge"));
  const dirtyNote = h("span", { class: "muted small", id: "dirty" });
  const removalNote = h("p", { class: "error small", id: "pending-removals" });

  const el = h("div", { class: "zones" },
    h("p", {}, h("a", { href: "#/ops" }, `← ${t("ops_title")}`)),
    h("h2", {}, `${t("zone_editor")} · ${cameraId}`),
    h("p", { class: "muted small", id: "zone-help" }, t("zone_help")),
    h("div", { class: "split wide" },
      h("section", { class: "card" }, stage),
      h("section", { class: "card stack" },
        list,
        h("div", { class: "row" },
          h("button", { type: "button", id: "new-zone", onclick: newZone }, t("new_zone")),
          h("button", { type: "button", class: "danger", id: "delete-zone", onclick: deleteZone }, t("delete_zone"))),
        form,
        h("div", { class: "row" }, pushButton, dirtyNote),
        removalNote,
        status)));

  function markDirty() {
    dirty = true;
    dirtyNote.textContent = t("unsaved");
  }

  /** What pushing now removes, by the names central uses ("camera/zone"); a renamed zone counts. */
  function removals() {
    return savedIds.filter((id) => !zones.some((z) => z.id === id)).map((id) => `${cameraId}/${id}`);
  }

  function showRemovals() {
    const names = removals();
    removalNote.textContent = names.length ? `${t("pending_removal")}: ${names.join(", ")}` : "";
    removalNote.hidden = !names.length;
  }

  function toPoint(ev) {
    const rect = svg.getBoundingClientRect();
    return [clamp01((ev.clientX - rect.left) / rect.width), clamp01((ev.clientY - rect.top) / rect.height)];
  }

  function draw() {
    const [w, hgt] = size;
    const r = Math.max(w, hgt) / 110;
    fill(svg, );
    zones.forEach((zone, zi) => {
      const pts = zone.polygon.map(([x, y]) => `${x * w},${y * hgt}`).join(" ");
      const open = zi === current && drawing;
      svg.append(s(open ? "polyline" : "polygon", { points: pts, class: `zone zone-${zone.kind} ${zi === current ? "current" : ""}`, "stroke-width": r / 3 }));
      if (zi !== current) return;
      zone.polygon.forEach(([x, y], vi) => {
        const handle = s("circle", {
          cx: x * w, cy: y * hgt, r, class: `handle ${vi === vertex ? "selected" : ""}`, dataset: null,
          "data-vertex": vi,
        });
        handle.addEventListener("pointerdown", (ev) => startDrag(ev, vi));
        svg.append(handle);
      });
    });
    drawList();
  }

  function drawList() {
    showRemovals(); // the list changes whenever a zone is added, deleted or renamed
    fill(list, ...zones.map((zone, zi) => h("li", {},
      h("button", { type: "button", class: "tab", "aria-pressed": String(zi === current), onclick: () => { current = zi; vertex = -1; drawing = false; draw(); drawForm(); } },
        `${zone.id} · ${label("kind", zone.kind)} · ${zone.polygon.length} ${t("vertices")}`))));
  }

  function field(name, text, input) {
    input.id = `zone-${name}`;
    input.name = name;
    return [h("label", { for: input.id }, text), input];
  }

  function drawForm() {
    const zone = zones[current];
    if (!zone) {
      fill(form, );
      return;
    }
    const kind = h("select", {}, KINDS.map((k) => h("option", { value: k, selected: k === zone.kind }, label("kind", k))));
    const nums = NUMBER_FIELDS.map((name) => field(name, t(name), h("input", { type: "number", step: name === "min_score" ? "0.05" : "1", min: 0, value: zone[name] ?? "" })));
    const polygonText = h("input", { type: "text", value: toText(zone.polygon), spellcheck: false });
    fill(form, 
      ...field("id", t("zone_id"), h("input", { type: "text", value: zone.id, required: true, pattern: "[a-z0-9\\-]+" })),
      ...field("kind", t("zone_kind"), kind),
      ...nums.flat(),
      ...field("labels", t("labels"), h("input", { type: "text", value: (zone.labels ?? []).join(", "), placeholder: "person, car" })),
      ...field("polygon", `${t("vertices")} (x,y; …)`, polygonText),
    );
    form.oninput = (ev) => {
      const name = ev.target.name;
      if (name === "polygon") {
        try {
          zone.polygon = fromText(ev.target.value);
          ev.target.setCustomValidity("");
          draw();
        } catch (err) {
          ev.target.setCustomValidity(err.message);
        }
      } else if (name === "labels") {
        zone.labels = ev.target.value.split(",").map((x) => x.trim()).filter(Boolean);
      } else if (NUMBER_FIELDS.includes(name)) {
        zone[name] = ev.target.value === "" ? null : Number(ev.target.value);
      } else {
        zone[name] = ev.target.value;
        drawList();
      }
      markDirty();
    };
  }

  function syncPolygonText() {
    const input = form.elements.polygon;
    if (input && zones[current]) input.value = toText(zones[current].polygon);
  }

  function newZone() {
    let n = zones.length + 1;
    while (zones.some((z) => z.id === `zone-${n}`)) n++;
    zones.push({ id: `zone-${n}`, kind: "fire_lane", polygon: [] });
    current = zones.length - 1;
    vertex = -1;
    drawing = true;
    markDirty();
    draw();
    drawForm();
    announce(t("zone_help"));
    svg.focus();
  }

  function deleteZone() {
    if (current < 0) return;
    zones.splice(current, 1);
    current = zones.length ? 0 : -1;
    drawing = false;
    markDirty();
    draw();
    drawForm();
  }

  let dragging = -1;
  function startDrag(ev, vi) {
    ev.stopPropagation();
    ev.preventDefault();
    if (drawing && vi === 0 && zones[current].polygon.length >= 3) {
      drawing = false; // clicking the first vertex closes the polygon
      draw();
      return;
    }
    vertex = vi;
    dragging = vi;
    svg.setPointerCapture(ev.pointerId);
    draw();
  }

  svg.addEventListener("pointermove", (ev) => {
    if (dragging < 0) return;
    zones[current].polygon[dragging] = toPoint(ev);
    markDirty();
    draw();
    syncPolygonText();
  });
  svg.addEventListener("pointerup", () => { dragging = -1; });
  svg.addEventListener("pointerdown", (ev) => {
    if (ev.target.tagName === "circle") return;
    if (current < 0) newZone();
    const zone = zones[current];
    if (!drawing && zone.polygon.length >= 3) return;
    drawing = true;
    zone.polygon.push(toPoint(ev));
    vertex = zone.polygon.length - 1;
    markDirty();
    draw();
    syncPolygonText();
  });
  svg.addEventListener("keydown", (ev) => {
    const zone = zones[current];
    if (!zone) return;
    const step = ev.shiftKey ? 0.02 : 0.005;
    const moves = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step] };
    if (ev.key === "Tab" || !zone.polygon.length) return;
    if (ev.key === "n") vertex = (vertex + 1) % zone.polygon.length;
    else if (moves[ev.key] && vertex >= 0) {
      const [dx, dy] = moves[ev.key];
      const [x, y] = zone.polygon[vertex];
      zone.polygon[vertex] = [clamp01(x + dx), clamp01(y + dy)];
      markDirty();
    } else if ((ev.key === "Delete" || ev.key === "Backspace") && vertex >= 0) {
      zone.polygon.splice(vertex, 1);
      vertex = Math.min(vertex, zone.polygon.length - 1);
      markDirty();
    } else if (ev.key === "Enter" && drawing && zone.polygon.length >= 3) drawing = false;
    else return;
    ev.preventDefault();
    draw();
    syncPolygonText();
  });

  async function push() {
    for (const zone of zones) {
      const bad = problems(zone.polygon);
      if (bad.length) {
        fill(status, h("p", { class: "error", role: "alert" }, `${zone.id}: ${bad.join("; ")}`));
        return;
      }
    }
    drawing = false;
    pushButton.disabled = true;
    fill(status, h("p", {}, t("pushing")));
    try {
      const body = zones.map(cleanZone);
      const sent = await guardedChange({
        send: (extra) => api.pushZones(cameraId, body, extra),
        verb: "verb_save",
        expected: removals(),
        short: (name) => (name.startsWith(`${cameraId}/`) ? name.slice(cameraId.length + 1) : name),
      });
      if (!sent) {
        fill(status, h("p", { class: "muted", id: "push-cancelled" }, t("not_saved")));
        return;
      }
      // Stored by central from here on, whatever the edge answers: nothing is left to remove.
      savedIds = body.map((z) => z.id);
      showRemovals();
      const started = Date.now();
      let reply = await api.command(sent.command_id);
      while (reply.status === "pending" && Date.now() - started < POLL_LIMIT_MS) {
        await new Promise((r) => setTimeout(r, POLL_MS));
        reply = await api.command(sent.command_id);
      }
      if (reply.status === "ok") {
        dirty = false;
        dirtyNote.textContent = "";
        const text = `${t("applied_version")}: ${reply.result?.version ?? "?"}`;
        fill(status, h("p", { class: "ok", id: "applied-version", dataset: { version: reply.result?.version ?? "" } }, `✔ ${text}`));
        toast(text);
        forgetCameras();
      } else if (reply.status === "error") {
        fill(status, h("div", { class: "error", role: "alert", id: "edge-errors" }, h("p", {}, t("edge_errors")), h("ul", {}, (reply.errors ?? []).map((e) => h("li", {}, e)))));
      } else {
        fill(status, h("p", { class: "error", role: "alert" }, `${t("pushing")} (${reply.status})`));
      }
    } catch (err) {
      const detail = Array.isArray(err.detail) ? err.detail.map((d) => `${(d.loc ?? []).join(".")}: ${d.msg}`) : [err.message];
      fill(status, h("div", { class: "error", role: "alert", id: "edge-errors" }, h("p", {}, t("action_failed")), h("ul", {}, detail.map((e) => h("li", {}, e)))));
    } finally {
      pushButton.disabled = false;
    }
  }

  draw();
  drawForm();
  const beforeUnload = (ev) => { if (dirty) ev.preventDefault(); };
  window.addEventListener("beforeunload", beforeUnload);
  return { el, dispose: () => window.removeEventListener("beforeunload", beforeUnload) };
}
