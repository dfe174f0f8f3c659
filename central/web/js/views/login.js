// The login form: central's OAuth2 password flow.

import * as api from "../api.js";
import { h } from "../dom.js";
import { t } from "../i18n.js";

export function renderLogin(onLoggedIn) {
  const error = h("p", { class: "error", role: "alert", id: "login-error" });
  const user = h("input", { id: "login-username", name: "username", autocomplete: "username", required: true });
  const pass = h("input", { id: "login-password", name: "password", type: "password", autocomplete: "current-password", required: true });
  const form = h(
    "form",
    { id: "login", class: "card login", "aria-labelledby": "login-title" },
    h("h2", { id: "login-title" }, t("login")),
    h("label", { for: "login-username" }, t("username")), user,
    h("label", { for: "login-password" }, t("password")), pass,
    h("button", { type: "submit", class: "primary" }, t("login")),
    error,
  );
  // A --demo central (default passwords) says so before anyone logs in, too.
  fetch("/healthz").then((res) => res.json()).then((health) => {
    if (health.demo) form.prepend(h("p", { class: "demo-flag", role: "status" }, t("demo_banner")));
  }).catch(() => {});
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    error.textContent = "";
    try {
      await api.login(user.value, pass.value);
    } catch (err) {
      error.textContent = err.status === 401 ? t("login_failed") : `${t("error")}: ${err.message}`;
      pass.select();
      return;
    }
    await onLoggedIn();
  });
  setTimeout(() => user.focus(), 0);
  return form;
}
