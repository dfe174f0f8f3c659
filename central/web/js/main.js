// The console's shell: log in, choose the pages for the user's role, route by URL hash, keep one live stream.

import * as api from "./api.js";
import { fill, h, $, announce } from "./dom.js";
import { t, getLang, setLang, onLangChange, label } from "./i18n.js";
import { canOpen, homeFor, navFor } from "./roles.js";
import { renderLogin } from "./views/login.js";

const VIEWS = {
  monitor: () => import("./views/monitor.js"),
  incident: () => import("./views/incident.js"),
  board: () => import("./views/board.js"),
  dashboard: () => import("./views/dashboard.js"),
  tasks: () => import("./views/tasks.js"),
  task: () => import("./views/tasks.js"),
  silences: () => import("./views/silences.js"),
  ops: () => import("./views/ops.js"),
  zones: () => import("./views/zones.js"),
  cameras: () => import("./views/cameras.js"),
};

// `navigation` counts route() calls, so a slow page that finishes after the user moved on is dropped.
const state = { me: null, view: null, stopLive: null, liveListeners: new Set(), navigation: 0, rendered: false };

function parseHash() {
  const [page, ...params] = location.hash.replace(/^#\/?/, "").split("/").filter(Boolean);
  return { page: page || "", params: params.map(decodeURIComponent) };
}

export function go(path) {
  location.hash = `#/${path}`;
}

function renderChrome() {
  document.title = `${t("app_title")} · Sharpeyes`;
  $("#app-title").textContent = t("app_title");
  $("#skip-link").textContent = t("skip_to_main");
  $("#nav").setAttribute("aria-label", t("nav_main"));
  $("#lang").textContent = t("language");
  $("#lang").setAttribute("aria-label", t("language_label"));
  $("#logout").textContent = t("logout");
  const nav = $("#nav");
  fill(nav, );
  if (!state.me) {
    $("#who").textContent = "";
    $("#logout").hidden = true;
    $("#live").hidden = true;
    return;
  }
  const { page } = parseHash();
  const list = h("ul");
  for (const item of navFor(state.me.role)) {
    const current = page === item.name || (item.name === "monitor" && page === "incident") || (item.name === "tasks" && page === "task") || (item.name === "ops" && page === "zones");
    list.append(h("li", {}, h("a", { href: `#/${item.name}`, "aria-current": current ? "page" : null }, t(item.key))));
  }
  nav.append(list);
  $("#who").textContent = `${state.me.username} · ${label("role", state.me.role)}`;
  if (state.me.demo) $("#who").prepend(h("strong", { class: "demo-flag", role: "status" }, t("demo_banner")), " ");
  $("#logout").hidden = false;
  if (state.liveUp !== undefined) setLive(state.liveUp);
}

function setLive(up) {
  state.liveUp = up;
  const el = $("#live");
  el.hidden = false;
  el.textContent = up ? t("live_on") : t("live_off");
  el.className = up ? "live on" : "live";
}

function startLive() {
  if (state.stopLive) state.stopLive();
  state.stopLive = api.liveChanges(() => {
    for (const fn of state.liveListeners) fn();
  }, setLive);
}

async function route() {
  const navigation = ++state.navigation;
  const view = $("#view");
  if (state.view?.dispose) state.view.dispose();
  state.view = null;
  state.liveListeners.clear();
  if (!state.me) {
    renderChrome();
    fill(view, renderLogin(onLoggedIn));
    state.rendered = true;
    return;
  }
  let { page, params } = parseHash();
  if (!page) {
    go(homeFor(state.me.role));
    return;
  }
  renderChrome();
  if (!VIEWS[page]) {
    fill(view, h("p", { class: "error", role: "alert" }, t("not_found")));
    return;
  }
  if (!canOpen(state.me.role, page)) {
    fill(view, h("p", { class: "error", role: "alert" }, t("forbidden")));
    return;
  }
  fill(view, h("p", { "aria-busy": "true" }, t("loading")));
  const module = await VIEWS[page]();
  const listeners = new Set();
  const ctx = {
    me: state.me,
    page,
    params,
    go,
    onLive: (fn) => listeners.add(fn),
  };
  let rendered;
  try {
    rendered = await module.render(ctx);
  } catch (err) {
    if (navigation === state.navigation) fill(view, h("p", { class: "error", role: "alert" }, `${t("error")}: ${err.message}`));
    return;
  }
  if (navigation !== state.navigation) {
    if (rendered.dispose) rendered.dispose();
    return;
  }
  state.view = rendered;
  state.liveListeners = listeners;
  fill(view, rendered.el);
  const heading = view.querySelector("h2");
  if (heading) announce(heading.textContent);
  // Keyboard and screen-reader users start on the new page's content, not where the old page was.
  // On a fresh load the page is left alone, so the first Tab still reaches the skip link.
  if (state.rendered && !view.contains(document.activeElement)) view.focus({ preventScroll: true });
  state.rendered = true;
}

async function onLoggedIn() {
  state.me = await api.me();
  startLive();
  if (!parseHash().page) go(homeFor(state.me.role));
  else route();
}

function logout() {
  api.clearToken();
  if (state.stopLive) state.stopLive();
  state.stopLive = null;
  state.me = null;
  history.replaceState(null, "", "/");
  route();
}

api.setUnauthorizedHandler(() => {
  if (state.me) logout();
});

$("#logout").addEventListener("click", logout);
// The skip link must not change the hash: the hash is the router's.
$("#skip-link").addEventListener("click", (ev) => {
  ev.preventDefault();
  $("#view").focus();
});
$("#lang").addEventListener("click", () => setLang(getLang() === "zh" ? "en" : "zh"));
onLangChange(() => route());
window.addEventListener("hashchange", route);

(async () => {
  if (api.hasToken()) {
    try {
      await onLoggedIn();
      return;
    } catch {
      api.clearToken();
    }
  }
  route();
})();
