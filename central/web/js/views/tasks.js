// Grid workers and units on a phone: my tasks (nearest deadline first), accept, report with photos.
// Kept light for a slow connection: one list request, images only when opened, no clips unless asked.

import * as api from "../api.js";
import { fill, h, toast, announce } from "../dom.js";
import { t, label, fmtTime, fmtDuration } from "../i18n.js";
import { actionLabel, deadlineBadge, hazardTitle, snapshotFigure, stateBadge } from "../widgets.js";

function byDeadline(a, b) {
  const da = a.stage_deadline_at ? Date.parse(a.stage_deadline_at) : Infinity;
  const db = b.stage_deadline_at ? Date.parse(b.stage_deadline_at) : Infinity;
  return da - db || Date.parse(a.started_at) - Date.parse(b.started_at);
}

function outcomeLine(inc) {
  if (inc.state === "closed" && inc.close_reason === "fixed") return h("p", { class: "ok", dataset: { outcome: "passed" } }, `✔ ${t("check_passed")}`);
  if (inc.state === "in_progress" && (inc.rework_count ?? 0) > 0) return h("p", { class: "error", dataset: { outcome: "rework" } }, `↺ ${t("came_back")} (${inc.rework_count})`);
  return null;
}

async function renderList(ctx) {
  const el = h("div", { class: "tasks" });
  async function draw() {
    const data = await api.incidents({ limit: 200 });
    const open = data.items.filter((i) => i.state !== "closed").sort(byDeadline);
    const done = data.items.filter((i) => i.state === "closed").slice(0, 10);
    const item = (inc) => h("li", { class: `task ${inc.deadline_color ? `edge-${inc.deadline_color}` : ""}`, dataset: { id: inc.id } },
      h("a", { href: `#/task/${inc.id}`, class: "tasklink" },
        h("strong", {}, hazardTitle(inc)), h("span", { class: "muted" }, ` #${inc.id}`),
        h("div", { class: "small" }, `${inc.camera} · ${inc.zone ?? ""}`),
        h("div", { class: "row" }, stateBadge(inc), deadlineBadge(inc))),
      outcomeLine(inc));
    fill(el,
      h("h2", {}, t("tasks_title")),
      open.length ? h("ol", { class: "tasklist", id: "tasklist" }, open.map(item)) : h("p", { class: "muted" }, t("no_tasks")),
      done.length ? [h("h3", {}, label("state", "closed")), h("ol", { class: "tasklist done", id: "donelist" }, done.map(item))] : null);
  }
  ctx.onLive(() => draw().catch(() => {}));
  await draw();
  return { el };
}

function reportForm(inc, onDone) {
  const note = h("textarea", { id: "report-note", name: "note", rows: 3, required: true });
  const photos = h("input", { id: "report-photos", name: "photos", type: "file", accept: "image/*", capture: "environment", multiple: true });
  const previews = h("div", { class: "row" });
  const status = h("p", { role: "status", class: "small" });
  const submit = h("button", { type: "submit", class: "primary big" }, actionLabel("feedback"));
  photos.addEventListener("change", () => {
    fill(previews, ...[...photos.files].map((f) => h("img", { src: URL.createObjectURL(f), alt: f.name, class: "preview-photo" })));
  });
  const form = h("form", { class: "card stack", id: "report-form" },
    h("h3", {}, t("report_title")),
    h("label", { for: "report-note" }, `${t("note")} *`), note,
    h("label", { for: "report-photos" }, t("take_photo")), photos, previews,
    submit, status);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    submit.disabled = true;
    try {
      const shas = [];
      for (const [i, file] of [...photos.files].entries()) {
        status.textContent = `${t("photos")} ${i + 1}/${photos.files.length}…`;
        shas.push((await api.upload(file)).sha256);
      }
      const updated = await api.act(inc.id, "feedback", { note: note.value, photos: shas });
      status.textContent = t("report_sent");
      toast(t("report_sent"));
      announce(t("report_sent"));
      onDone(updated);
    } catch (err) {
      status.textContent = `${t("action_failed")}: ${err.message}`;
      submit.disabled = false;
    }
  });
  return form;
}

async function renderTask(ctx) {
  const el = h("div", { class: "task-page" });
  async function draw() {
    const inc = await api.incident(ctx.params[0]);
    const allowed = inc.allowed_actions ?? [];
    const buttons = allowed.filter((a) => a !== "feedback").map((action) => h("button", {
      type: "button", class: action === "return" ? "danger big" : "primary big", dataset: { action },
      onclick: async () => {
        const body = {};
        if (action === "return") {
          const reason = prompt(t("reason"));
          if (!reason) return;
          body.reason = reason;
        }
        try {
          await api.act(inc.id, action, body);
          toast(`${actionLabel(action)} ✔`);
          await draw();
        } catch (err) {
          toast(`${t("action_failed")}: ${err.message}`, "error");
        }
      },
    }, actionLabel(action)));
    const photos = (inc.evidence ?? []).filter((e) => e.kind === "photo");
    fill(el, 
      h("p", {}, h("a", { href: "#/tasks" }, `← ${t("tasks_title")}`)),
      h("h2", {}, `${hazardTitle(inc)} #${inc.id}`),
      h("div", { class: "row" }, stateBadge(inc), deadlineBadge(inc)),
      outcomeLine(inc),
      h("dl", { class: "facts" },
        h("dt", {}, t("camera")), h("dd", {}, `${inc.camera} / ${inc.zone ?? "—"}`),
        h("dt", {}, t("grid_cell")), h("dd", {}, inc.grid_cell ?? "—"),
        h("dt", {}, t("started")), h("dd", {}, fmtTime(inc.started_at)),
        h("dt", {}, t("due")), h("dd", {}, inc.stage_deadline_at ? `${fmtTime(inc.stage_deadline_at)} (${fmtDuration((Date.parse(inc.stage_deadline_at) - Date.now()) / 1000)})` : "—")),
      snapshotFigure(inc.latest_snapshot_sha256, { alt: inc.title }),
      buttons.length ? h("div", { class: "actions" }, buttons) : null,
      allowed.includes("feedback") ? reportForm(inc, () => draw()) : null,
      photos.length ? h("section", {}, h("h3", {}, t("photos")), h("div", { class: "row" }, photos.map((p) => snapshotFigure(p.sha256, { alt: t("photos"), cls: "thumb" })))) : null,
    );
  }
  ctx.onLive(() => { if (!el.querySelector("#report-form textarea")?.value) draw().catch(() => {}); });
  await draw();
  return { el };
}

export function render(ctx) {
  return ctx.page === "task" ? renderTask(ctx) : renderList(ctx);
}
