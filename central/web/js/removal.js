// Guarded configuration changes (zones, a whole edge, a restored version): central refuses a change
// that removes cameras or zones with a 409 naming exactly what it removes and what that would take
// away (open incidents, held evidence, PIPL register entries). The console shows that answer in a
// dialog and, once the operator confirms, sends the change again naming exactly those removals.
//
// The console could name the removals itself (it knows which zones it deleted), but central measures
// the change against the configuration it runs now, which someone else may have changed since this
// page was opened; and only central knows what a removal touches. So the first send never names
// anything, and the 409's list is what the operator confirms and what is sent back.

import { fill, h } from "./dom.js";
import { t, label, getLang } from "./i18n.js";

/** The body of a guarded change's 409, or null for any other error. */
export function removalConflict(err) {
  const detail = err?.status === 409 ? err.detail : null;
  return detail && typeof detail === "object" && Array.isArray(detail.confirm_removal) ? detail : null;
}

function fmt(text, values) {
  return text.replace(/\{(\w+)\}/g, (_, key) => String(values[key] ?? ""));
}

/** "Remove a, b and save": the names the operator confirms, on the button that confirms them. */
export function removeLabel(names, verbKey) {
  const shown = names.length > 3 ? [...names.slice(0, 3), `+${names.length - 3}`] : names;
  return fmt(t("remove_and"), { names: shown.join(getLang() === "zh" ? "、" : ", "), verb: t(verbKey) });
}

// Incident links open in a new tab so the edit waiting behind the dialog is not lost. rel="opener"
// because the login token lives in sessionStorage, which only a tab opened with an opener inherits
// (Chromium treats a bare target=_blank as noopener); the page is our own origin.
function incidentLink(id, text) {
  return h("a", { href: `#/incident/${id}`, target: "_blank", rel: "opener", dataset: { incident: id } }, text);
}

function affectedList(id, title, items) {
  if (!items.length) return null;
  return h("section", { id, class: "affected" }, h("h4", {}, `${title} (${items.length})`), h("ul", {}, items));
}

/** What removing the listed names would take away, as central reported it. */
export function affectedView(affected = {}) {
  const incidents = (affected.open_incidents ?? []).map((i) => h("li", {},
    incidentLink(i.id, `#${i.id}`), ` · ${i.camera}${i.zone ? `/${i.zone}` : ""} · `,
    h("span", { class: `badge state-${i.state}` }, label("state", i.state))));
  const held = (affected.held_evidence ?? []).map((e) => h("li", {},
    e.incident_id !== undefined
      ? [incidentLink(e.incident_id, `#${e.incident_id}`), ` · ${t("legal_hold")}`]
      : [h("code", { title: e.sha256 }, `${e.sha256.slice(0, 12)}…`), ` · ${t("held_by")} ${e.hold}`]));
  const register = (affected.pipl_register ?? []).map((r) => h("li", {},
    h("strong", {}, r.camera), ` (${r.edge}) · ${r.purpose ?? t("pipl_no_purpose")} · `, h("span", { class: "small" }, r.retention)));
  const sections = [
    affectedList("affected-incidents", t("affected_incidents"), incidents),
    affectedList("affected-evidence", t("affected_evidence"), held),
    affectedList("affected-pipl", t("affected_pipl"), register),
  ].filter(Boolean);
  return sections.length ? sections : h("p", { class: "muted", id: "affected-none" }, t("affected_none"));
}

function removalView(conflict, { expected, again }) {
  // What this page did not delete itself: the configuration changed since it was loaded.
  const foreign = (name) => expected && !expected.includes(name);
  return [
    h("h3", { id: "ccd-title" }, t("removal_title")),
    again ? h("p", { class: "error", id: "removal-changed" }, t("removal_changed")) : null,
    h("p", { class: "small" }, t("removal_help")),
    h("ul", { id: "removal-list" }, conflict.confirm_removal.map((name) => h("li", { dataset: { removal: name } },
      h("strong", {}, name), foreign(name) ? h("span", { class: "error small" }, ` — ${t("removal_not_yours")}`) : null))),
    affectedView(conflict.affected),
  ];
}

/**
 * One modal dialog whose content changes step by step; `ask` shows a step and resolves with
 * `{ reason }` when it is confirmed, or null when it is cancelled (button or Escape).
 */
function dialogShell() {
  const dialog = h("dialog", { class: "card wide-dialog", id: "config-change-dialog", "aria-labelledby": "ccd-title" });
  document.body.append(dialog);
  let pending = null;
  let reasonText = "";
  const settle = (value) => {
    const resolve = pending;
    pending = null;
    resolve?.(value);
  };
  dialog.addEventListener("cancel", (ev) => { ev.preventDefault(); settle(null); });
  return {
    ask(children, submitText, submitClass, focus) {
      return new Promise((resolve) => {
        pending = resolve;
        const reason = h("input", { id: "ccd-reason", name: "reason", maxlength: 500, autocomplete: "off", value: reasonText });
        const submit = h("button", { type: "submit", class: submitClass, id: "ccd-confirm" }, submitText);
        const cancel = h("button", { type: "button", id: "ccd-cancel", onclick: () => settle(null) }, t("cancel"));
        const form = h("form", { class: "stack" }, children,
          h("label", { for: "ccd-reason" }, t("change_reason")), reason, h("div", { class: "row" }, submit, cancel));
        form.addEventListener("submit", (ev) => {
          ev.preventDefault();
          submit.disabled = true; // until central answers: a second click must not send it twice
          reasonText = reason.value.trim();
          settle({ reason: reasonText });
        });
        fill(dialog, form);
        if (!dialog.open) dialog.showModal();
        (focus === "reason" ? reason : cancel).focus();
      });
    },
    close() {
      settle(null);
      if (dialog.open) dialog.close();
      dialog.remove();
    },
  };
}

/**
 * Send a guarded change. `send(body)` makes the request, body being `{ reason?, confirm_removal? }`.
 * With `intro` ({ children, submit }) a dialog asks first (a restore is never sent on one click).
 * When central answers with a removal 409, the dialog shows it; confirming sends the change again
 * with `confirm_removal` set to exactly the names of that answer (and again, should the
 * configuration change meanwhile). `expected`: the names this page knows it removed, so names it
 * did not remove are pointed out. `verb`: the i18n key of what the confirm button does ("save");
 * `short(name)` shortens a name on that button (the zone editor drops its own camera's prefix).
 * Resolves to central's answer, or null when the operator cancelled; other errors are thrown.
 */
export async function guardedChange({ send, verb, expected = null, intro = null, short = (name) => name }) {
  let ui = null;
  let body = {};
  try {
    if (intro) {
      ui = dialogShell();
      const answer = await ui.ask(intro.children, intro.submit, "primary", "reason");
      if (!answer) return null;
      if (answer.reason) body.reason = answer.reason;
    }
    let again = false;
    let plainRetry = false;
    for (;;) {
      try {
        return await send(body);
      } catch (err) {
        const conflict = removalConflict(err);
        if (!conflict) throw err;
        if (!conflict.confirm_removal.length) {
          // We named removals, but against the configuration now the change removes nothing
          // (someone else removed them first): there is nothing to confirm, so send it plainly, once.
          if (!body.confirm_removal || plainRetry) throw err;
          plainRetry = true;
          delete body.confirm_removal;
          continue;
        }
        ui ??= dialogShell();
        const answer = await ui.ask(removalView(conflict, { expected, again }),
          removeLabel(conflict.confirm_removal.map(short), verb), "danger", "cancel");
        if (!answer) return null;
        body = { ...(answer.reason ? { reason: answer.reason } : {}), confirm_removal: [...conflict.confirm_removal] };
        again = true;
      }
    }
  } finally {
    ui?.close();
  }
}
