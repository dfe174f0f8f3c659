// Operators: sites, edges and cameras (with the zone editor), each edge's configuration history (with
// restore), the grid, users and roles.

import * as api from "../api.js";
import { announce, fill, h, toast } from "../dom.js";
import { t, label, fmtTime } from "../i18n.js";
import { ROLES } from "../roles.js";
import { actuatorsTable } from "../widgets.js";
import { guardedChange } from "../removal.js";

function sitesTable(sites) {
  const rows = [];
  for (const site of sites) {
    for (const edge of site.edges) {
      for (const cam of edge.cameras) {
        rows.push(h("tr", { dataset: { camera: cam.id } },
          h("td", {}, site.name || site.site), h("td", {}, edge.id, " ", h("span", { class: `badge health-${edge.state}` }, label("health", edge.state))),
          h("th", { scope: "row" }, cam.id), h("td", {}, cam.grid_cell ?? "—"),
          h("td", {}, h("span", { class: `badge health-${cam.health}` }, label("health", cam.health)), " ", h("span", { class: "small muted" }, fmtTime(cam.health_since))),
          h("td", {}, (cam.zones ?? []).map((z) => z.id).join(", ") || "—"),
          h("td", {}, h("a", { href: `#/zones/${encodeURIComponent(cam.id)}`, class: "button" }, t("edit_zones")))));
      }
    }
  }
  return h("table", { id: "sites" },
    h("thead", {}, h("tr", {}, ["", t("edge"), t("camera"), t("grid_cell"), t("state"), t("zone"), ""].map((x) => h("th", { scope: "col" }, x)))),
    h("tbody", {}, rows));
}

const SUMMARY_KEYS = ["cameras_added", "cameras_removed", "cameras_changed", "zones_added", "zones_removed", "settings_changed"];

/** A version's diff against the one before, one line per kind of change. */
function summaryText(summary) {
  const lines = SUMMARY_KEYS.filter((key) => summary?.[key]?.length)
    .map((key) => h("div", { dataset: { change: key } }, `${t(`sum_${key}`)}: ${summary[key].join(", ")}`));
  return lines.length ? lines : h("span", { class: "muted" }, t("no_change"));
}

/** Whether the chain's breaks (central's sentences, "version N: …" or "version N follows …") name VERSION. */
function breaksAt(breaks, version) {
  return breaks.some((b) => b.startsWith(`version ${version}:`) || b.startsWith(`version ${version} follows`));
}

async function restoreVersion(edge, version, redraw) {
  try {
    const done = await guardedChange({
      send: (extra) => api.restoreConfig(edge, version, extra),
      verb: "verb_restore",
      intro: {
        children: [h("h3", { id: "ccd-title" }, t("restore_title").replace("{edge}", edge).replace("{version}", version)),
          h("p", { class: "small" }, t("restore_help"))],
        submit: t("restore"),
      },
    });
    if (!done) return;
    const text = `${edge}: ${t("restored_as")} ${done.version}`;
    toast(text);
    announce(text);
    redraw();
  } catch (err) {
    toast(`${t("action_failed")}: ${err.message}`, "error");
  }
}

/**
 * One edge's configuration versions, newest first: who changed what, why, and whether the hash
 * chain still holds; every older version can be restored (as a new version, guarded like any change).
 */
function historyTable(edge, history, redraw) {
  if (!history) return h("p", { class: "error" }, `${edge}: ${t("action_failed")}`);
  const chain = history.chain_ok
    ? h("span", { class: "badge health-online", dataset: { chain: "ok" } }, `✓ ${t("chain_ok")}`)
    : h("span", { class: "badge health-offline", dataset: { chain: "broken" } }, `✗ ${t("chain_broken")}`);
  const head = h("h4", {}, `${t("edge")} ${edge} `, history.versions.length ? chain : null);
  if (!history.versions.length) return h("div", { class: "config-history", dataset: { edge } }, head, h("p", { class: "muted" }, t("config_none")));
  const newest = history.versions[history.versions.length - 1].version;
  const rows = [...history.versions].reverse().map((v) => {
    const broken = breaksAt(history.breaks, v.version);
    return h("tr", { dataset: { version: v.version, action: v.action } },
      h("th", { scope: "row" }, `v${v.version}`), h("td", { class: "small" }, fmtTime(v.at)), h("td", {}, v.actor),
      h("td", {}, label("config_action", v.action), v.restored_from ? h("div", { class: "small" }, `${t("restored_from")} ${v.restored_from}`) : null),
      h("td", { class: "small" }, v.reason ?? "—"),
      // The first version has nothing before it: its "diff" would list the whole configuration.
      h("td", { class: "small" }, v.version === 1 ? h("span", { class: "muted" }, t("first_version")) : summaryText(v.summary)),
      h("td", { class: broken ? "error" : "ok", title: broken ? history.breaks.join("\n") : null }, broken ? `✗ ${t("chain_broken")}` : "✓"),
      h("td", {}, v.version === newest
        ? h("span", { class: "muted small" }, t("newest"))
        : h("button", { type: "button", dataset: { restore: v.version }, "aria-label": `${t("restore")} ${edge} v${v.version}`,
          onclick: () => restoreVersion(edge, v.version, redraw) }, t("restore"))));
  });
  return h("div", { class: "config-history", dataset: { edge } },
    head,
    history.breaks.length ? h("ul", { class: "error small" }, history.breaks.map((b) => h("li", {}, b))) : null,
    h("table", { class: "config-versions", id: `config-versions-${edge}` },
      h("thead", {}, h("tr", {}, [t("version"), t("at"), t("by"), t("config_action"), t("reason"), t("config_changes"), t("chain"), ""]
        .map((x) => h("th", { scope: "col" }, x)))),
      h("tbody", {}, rows)));
}

function gridTable(nodes) {
  return h("table", { id: "grid" },
    h("thead", {}, h("tr", {}, ["code", t("grid_cell"), "level", "parent", t("worker")].map((x) => h("th", { scope: "col" }, x)))),
    h("tbody", {}, nodes.map((n) => h("tr", {}, h("td", {}, n.code), h("th", { scope: "row" }, n.name), h("td", {}, n.level), h("td", {}, n.parent ?? "—"), h("td", {}, (n.workers ?? []).join(", "))))));
}

function usersSection(users, redraw) {
  const table = h("table", { id: "users" },
    h("thead", {}, h("tr", {}, [t("username"), t("role"), t("worker"), t("unit"), t("grid_cell"), t("active")].map((x) => h("th", { scope: "col" }, x)))),
    h("tbody", {}, users.map((u) => h("tr", {},
      h("th", { scope: "row" }, u.username), h("td", {}, label("role", u.role)), h("td", {}, u.worker ?? "—"), h("td", {}, u.unit ?? "—"),
      h("td", {}, (u.grid ?? []).join(", ") || "—"),
      h("td", {}, h("input", {
        type: "checkbox", checked: u.active, "aria-label": `${t("active")} ${u.username}`,
        onchange: async (ev) => {
          try {
            await api.updateUser(u.username, { active: ev.target.checked });
          } catch (err) {
            ev.target.checked = !ev.target.checked;
            toast(`${t("action_failed")}: ${err.message}`, "error");
          }
        },
      }))))));
  const form = h("form", { class: "inline-form", id: "add-user" },
    h("label", { for: "nu-name" }, t("username")), h("input", { id: "nu-name", name: "username", required: true, autocomplete: "off" }),
    h("label", { for: "nu-pass" }, t("password")), h("input", { id: "nu-pass", name: "password", type: "password", required: true, autocomplete: "new-password" }),
    h("label", { for: "nu-role" }, t("role")), h("select", { id: "nu-role", name: "role" }, ROLES.map((r) => h("option", { value: r }, label("role", r)))),
    h("label", { for: "nu-worker" }, t("worker")), h("input", { id: "nu-worker", name: "worker" }),
    h("label", { for: "nu-grid" }, t("grid_cell")), h("input", { id: "nu-grid", name: "grid", placeholder: "110101001" }),
    h("button", { type: "submit", class: "primary" }, t("add_user")));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const data = Object.fromEntries(new FormData(form));
    const body = { username: data.username, password: data.password, role: data.role };
    if (data.worker) body.worker = data.worker;
    if (data.grid) body.grid = data.grid.split(",").map((x) => x.trim()).filter(Boolean);
    try {
      await api.createUser(body);
      toast(`${t("add_user")}: ${body.username}`);
      redraw();
    } catch (err) {
      toast(`${t("action_failed")}: ${err.message}`, "error");
    }
  });
  return [table, form];
}

/** The PIPL register: each camera's purpose, legal basis, sign and retention, and what is missing. */
function piplTable(rows) {
  if (!rows.length) return h("p", { class: "muted" }, t("none"));
  return [
    h("table", { class: "pipl" },
      h("thead", {}, h("tr", {}, [t("camera"), t("pipl_purpose"), t("pipl_basis"), t("pipl_signage"), t("pipl_retention"), t("pipl_gaps")]
        .map((x) => h("th", { scope: "col" }, x)))),
      h("tbody", {}, rows.map((r) => h("tr", { dataset: { camera: r.camera, gaps: r.gaps ? "yes" : "no" } },
        h("td", {}, r.camera), h("td", {}, r.purpose ?? "—"), h("td", {}, r.legal_basis ?? "—"),
        h("td", {}, r.signage === null ? "—" : r.signage ? "✓" : "✗"), h("td", { class: "small" }, r.retention),
        h("td", { class: r.gaps ? "error small" : "small" }, r.gaps || "—"))))),
    h("p", {}, h("a", { href: "/api/v1/pipl-register?format=csv", download: "pipl-register.csv", id: "pipl-csv" }, t("pipl_csv"))),
  ];
}

/** Which detector each camera runs, its history, promotion of a trained model through the gate, and rollback. */
function modelsSection(data, reviews, redraw) {
  const trained = data.models.filter((m) => m.trained);
  const rate = new Map(reviews.map((r) => [r.model, r]));
  async function run(call, what) {
    try {
      await call();
      toast(what);
      redraw();
    } catch (err) {
      toast(`${t("action_failed")}: ${err.message}`, "error");
    }
  }
  const cameraRows = data.cameras.map((c) => {
    const last = c.history[0];
    return h("tr", { dataset: { camera: c.camera, model: c.model } },
      h("th", { scope: "row" }, c.camera), h("td", {}, c.model),
      h("td", { class: "small" }, last ? `${last.action}: ${last.from_model} → ${last.to_model} · ${last.actor} · ${fmtTime(last.at)}` : "—"),
      h("td", {}, last && last.to_model === c.model
        ? h("button", { type: "button", class: "danger", "data-rollback": c.camera,
          onclick: () => run(() => api.rollbackModel(c.camera, "console"), `${t("rollback")}: ${c.camera} → ${last.from_model}`) }, t("rollback"))
        : null));
  });
  const modelRows = data.models.map((m) => h("tr", { dataset: { model: m.name } },
    h("th", { scope: "row" }, m.name), h("td", {}, m.base ?? "—"),
    h("td", {}, m.held_out_ebike_recall ?? "—"), h("td", {}, m.false_boxes_per_image ?? "—"), h("td", {}, m.vehicle_agreement ?? "—"),
    h("td", {}, rate.get(m.name)?.false_alarm_rate ?? "—")));
  const form = h("form", { class: "inline-form", id: "promote-model" },
    h("label", { for: "pm-model" }, t("model")), h("select", { id: "pm-model", name: "model" }, trained.map((m) => h("option", { value: m.name }, m.name))),
    h("label", { for: "pm-camera" }, t("camera")), h("select", { id: "pm-camera", name: "camera" }, data.cameras.map((c) => h("option", { value: c.camera }, c.camera))),
    h("button", { type: "submit", class: "primary", disabled: !trained.length }, t("promote")));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const body = Object.fromEntries(new FormData(form));
    run(() => api.promoteModel(body.model, body.camera, "console"), `${t("promote")}: ${body.model} → ${body.camera}`);
  });
  return [
    h("table", { id: "camera-models" },
      h("thead", {}, h("tr", {}, [t("camera"), t("model"), t("model_history"), ""].map((x) => h("th", { scope: "col" }, x)))),
      h("tbody", {}, cameraRows)),
    h("table", { id: "registered-models" },
      h("thead", {}, h("tr", {}, [t("model"), "base", t("held_out_recall"), "false boxes / image", "vehicle agreement", t("false_alarm_rate")]
        .map((x) => h("th", { scope: "col" }, x)))),
      h("tbody", {}, modelRows)),
    form,
  ];
}

export async function render(ctx) {
  const el = h("div", { class: "ops" });
  async function draw() {
    const [sites, nodes, users, register, models, reviews] = await Promise.all([api.sites(), api.grid().catch(() => []),
      api.users().catch(() => []), api.piplRegister().catch(() => null), api.models().catch(() => null),
      api.modelStats().catch(() => [])]);
    const edges = sites.flatMap((site) => site.edges.map((e) => e.id));
    const histories = await Promise.all(edges.map((edge) => api.configVersions(edge).catch(() => null)));
    fill(el, 
      h("h2", {}, t("ops_title")),
      h("section", { class: "card" }, h("h3", {}, t("sites")), sitesTable(sites)),
      h("section", { class: "card", id: "config-history" }, h("h3", {}, t("config_history")),
        edges.length ? edges.map((edge, i) => historyTable(edge, histories[i], draw)) : h("p", { class: "muted" }, t("none"))),
      h("section", { class: "card", id: "actuators-card" }, h("h3", {}, t("actuators")), actuatorsTable(sites, draw)),
      models ? h("section", { class: "card", id: "models-card" }, h("h3", {}, t("models_title")), modelsSection(models, reviews, draw)) : null,
      h("section", { class: "card" }, h("h3", {}, t("grid_tree")), gridTable(nodes)),
      h("section", { class: "card" }, h("h3", {}, t("users")), usersSection(users, draw)),
      register ? h("section", { class: "card", id: "pipl-register" }, h("h3", {}, t("pipl_register")), piplTable(register)) : null,
    );
  }
  ctx?.onLive?.(() => draw().catch(() => {}));  // a door hold shows (and ends) as it happens
  await draw();
  return { el };
}
