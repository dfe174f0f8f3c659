// The label editor on an incident: the raw frame and its boxes, to move, resize, relabel, delete
// and add (a missed object). The same stage as the zone editor (image + SVG, normalised points);
// saving is PUT /incidents/{id}/labels, in the incident's audit trail. Every review is a training sample.

import * as api from "./api.js";
import { fill, h, s, toast } from "./dom.js";
import { t } from "./i18n.js";
import { clamp01, round4 } from "./polygon.js";

const LABELS = ["ebike", "person", "bicycle", "motorcycle", "car", "stroller", "wheelchair"];
const MIN_SIDE = 0.01;

/** A box [x1, y1, x2, y2] spanned by two points, ordered and clamped. */
export function spanned(a, b) {
  return [Math.min(a[0], b[0]), Math.min(a[1], b[1]), Math.max(a[0], b[0]), Math.max(a[1], b[1])].map((v) => round4(clamp01(v)));
}

export function boxEditor(incidentId, label) {
  let boxes = label.boxes.map((b) => ({ label: b.label, box: [...b.box] }));
  let selected = boxes.length ? 0 : -1;
  let size = [1280, 720];
  let drag = null; // {mode: "new" | "move" | "resize", from, start}
  const svg = s("svg", { class: "editor-svg", viewBox: `0 0 ${size[0]} ${size[1]}`, role: "application", "aria-label": t("label_editor"), tabindex: "0", id: "label-canvas" });
  const img = h("img", { src: api.evidenceUrl(label.frame_sha256), alt: t("raw_frame"), id: "label-frame" });
  img.addEventListener("load", () => { size = [img.naturalWidth, img.naturalHeight]; svg.setAttribute("viewBox", `0 0 ${size[0]} ${size[1]}`); draw(); });
  const list = h("ul", { class: "zone-list", id: "label-list" });
  const verdict = h("p", { class: "small muted", id: "label-verdict" });
  const el = h("section", { class: "card", id: "labels" }, h("h3", {}, t("labels_title")),
    h("p", { class: "muted small" }, t("label_help")),
    h("div", { class: "editor-stage" }, img, svg), list, verdict,
    h("button", { type: "button", class: "primary", id: "save-labels", onclick: save }, t("save_labels")));

  function toPoint(ev) {
    const rect = svg.getBoundingClientRect();
    return [clamp01((ev.clientX - rect.left) / rect.width), clamp01((ev.clientY - rect.top) / rect.height)];
  }

  function draw() {
    const [w, hh] = size;
    fill(svg);
    boxes.forEach((b, i) => {
      const [x1, y1, x2, y2] = b.box;
      const rect = s("rect", { x: x1 * w, y: y1 * hh, width: (x2 - x1) * w, height: (y2 - y1) * hh, class: `zone box ${i === selected ? "current" : ""}`, "data-box": i });
      rect.addEventListener("pointerdown", (ev) => { ev.stopPropagation(); selected = i; drag = { mode: "move", from: toPoint(ev), start: [...b.box] }; svg.setPointerCapture(ev.pointerId); draw(); });
      svg.append(rect, s("text", { x: x1 * w + 4, y: y1 * hh + 18, class: "box-label" }, b.label));
      if (i === selected) {
        const handle = s("circle", { cx: x2 * w, cy: y2 * hh, r: Math.max(w, hh) / 110, class: "handle selected", "data-resize": i });
        handle.addEventListener("pointerdown", (ev) => { ev.stopPropagation(); drag = { mode: "resize", from: toPoint(ev), start: [...b.box] }; svg.setPointerCapture(ev.pointerId); });
        svg.append(handle);
      }
    });
    drawList();
  }

  function drawList() {
    fill(list, ...boxes.map((b, i) => h("li", { class: "row", dataset: { box: String(i) } },
      h("button", { type: "button", class: "tab", "aria-pressed": String(i === selected), onclick: () => { selected = i; draw(); } }, `#${i + 1}`),
      h("select", { "aria-label": `${t("label")} #${i + 1}`, onchange: (ev) => { b.label = ev.target.value; draw(); } },
        [...new Set([b.label, ...LABELS])].map((name) => h("option", { value: name, selected: name === b.label }, name))),
      h("button", { type: "button", class: "danger", onclick: () => { boxes.splice(i, 1); selected = Math.min(selected, boxes.length - 1); draw(); } }, t("delete")))));
  }

  svg.addEventListener("pointerdown", (ev) => {
    const p = toPoint(ev);
    boxes.push({ label: "ebike", box: [p[0], p[1], p[0], p[1]] });
    selected = boxes.length - 1;
    drag = { mode: "new", from: p, start: null };
    svg.setPointerCapture(ev.pointerId);
  });
  svg.addEventListener("pointermove", (ev) => {
    if (!drag || selected < 0) return;
    const p = toPoint(ev);
    const b = boxes[selected];
    if (drag.mode === "new") b.box = spanned(drag.from, p);
    else if (drag.mode === "resize") b.box = spanned([drag.start[0], drag.start[1]], p);
    else {
      const [x1, y1, x2, y2] = drag.start;
      const dx = Math.min(Math.max(p[0] - drag.from[0], -x1), 1 - x2);
      const dy = Math.min(Math.max(p[1] - drag.from[1], -y1), 1 - y2);
      b.box = [x1 + dx, y1 + dy, x2 + dx, y2 + dy].map(round4);
    }
    draw();
  });
  svg.addEventListener("pointerup", () => {
    if (drag?.mode === "new") {
      const [x1, y1, x2, y2] = boxes[selected].box;
      if (x2 - x1 < MIN_SIDE || y2 - y1 < MIN_SIDE) { boxes.pop(); selected = boxes.length - 1; } // a click, not a box
    }
    drag = null;
    draw();
  });

  async function save() {
    try {
      const saved = await api.saveIncidentLabels(incidentId, boxes);
      verdict.textContent = `${t("labels_saved")}: ${saved.reviewer} · ${saved.boxes.length}`;
      toast(t("labels_saved"));
    } catch (err) {
      toast(`${t("action_failed")}: ${err.message}`, "error");
    }
  }

  verdict.textContent = label.verdict ? `${t(`verdict_${label.verdict}`)} · ${label.reviewer}` : t("as_detected");
  draw();
  return el;
}
