// Silences (静默): a camera, zone or hazard whose new alarms are filed closed for a while (roadworks,
// a known false trigger). Who set each one, why and until when; monitors and admins add and end them.

import * as api from "../api.js";
import { fill, h, toast } from "../dom.js";
import { t, label, fmtTime } from "../i18n.js";
import { camerasById } from "../widgets.js";

const HAZARDS = ["fire_lane_blocked", "ebike_indoor", "zone_occupancy", "camera_offline", "camera_tampered"];

function silencesTable(rows, mayEdit, redraw) {
  if (!rows.length) return h("p", { class: "muted", id: "no-silences" }, t("none"));
  return h("table", { id: "silences" },
    h("thead", {}, h("tr", {}, [t("camera"), t("zone"), t("hazard"), t("silence_until"), t("reason"), t("by"), ""]
      .map((x) => h("th", { scope: "col" }, x)))),
    h("tbody", {}, rows.map((s) => h("tr", { dataset: { id: s.id, camera: s.camera } },
      h("th", { scope: "row" }, s.camera), h("td", {}, s.zone ?? t("all_zones")), h("td", {}, s.hazard ? label("hazard", s.hazard) : t("all_hazards")),
      h("td", {}, fmtTime(s.until)), h("td", {}, s.reason), h("td", {}, s.created_by),
      h("td", {}, mayEdit ? h("button", {
        type: "button", class: "danger", "aria-label": `${t("end_silence")} ${s.camera}`,
        onclick: async () => {
          try {
            await api.endSuppression(s.id);
            toast(t("silence_ended"));
            redraw();
          } catch (err) {
            toast(`${t("action_failed")}: ${err.message}`, "error");
          }
        },
      }, t("end_silence")) : null)))));
}

function addForm(cameras, redraw) {
  const camera = h("select", { id: "sil-camera", name: "camera", required: true },
    [...cameras.keys()].sort().map((id) => h("option", { value: id }, id)));
  const zone = h("select", { id: "sil-zone", name: "zone" });
  const fillZones = () => fill(zone, h("option", { value: "" }, t("all_zones")),
    (cameras.get(camera.value)?.zones ?? []).map((z) => h("option", { value: z.id }, z.id)));
  camera.addEventListener("change", fillZones);
  fillZones();
  const form = h("form", { class: "inline-form", id: "add-silence" },
    h("label", { for: "sil-camera" }, t("camera")), camera,
    h("label", { for: "sil-zone" }, t("zone")), zone,
    h("label", { for: "sil-hazard" }, t("hazard")), h("select", { id: "sil-hazard", name: "hazard" },
      h("option", { value: "" }, t("all_hazards")), HAZARDS.map((hz) => h("option", { value: hz }, label("hazard", hz)))),
    h("label", { for: "sil-hours" }, t("silence_hours")), h("input", { id: "sil-hours", name: "hours", type: "number", min: "0.25", max: "2160", step: "0.25", value: "4", required: true }),
    h("label", { for: "sil-reason" }, t("reason")), h("input", { id: "sil-reason", name: "reason", required: true, maxlength: 500 }),
    h("button", { type: "submit", class: "primary" }, t("add_silence")));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const data = Object.fromEntries(new FormData(form));
    const body = { camera: data.camera, duration_s: Number(data.hours) * 3600, reason: data.reason.trim() };
    if (data.zone) body.zone = data.zone;
    if (data.hazard) body.hazard = data.hazard;
    try {
      await api.addSuppression(body);
      toast(t("silence_added"));
      redraw();
    } catch (err) {
      toast(`${t("action_failed")}: ${err.message}`, "error");
    }
  });
  return form;
}

export async function render(ctx) {
  const el = h("div", { class: "silences" });
  const mayEdit = ["admin", "monitor"].includes(ctx.me.role);
  async function draw() {
    const [rows, cameras] = await Promise.all([api.suppressions(), camerasById()]);
    fill(el,
      h("h2", {}, t("silences_title")),
      h("p", { class: "muted" }, t("silences_help")),
      h("section", { class: "card" }, silencesTable(rows, mayEdit, draw)),
      mayEdit ? h("section", { class: "card" }, h("h3", {}, t("add_silence")), addForm(cameras, draw)) : null,
    );
  }
  ctx.onLive(() => draw().catch(() => {}));
  await draw();
  return { el };
}
