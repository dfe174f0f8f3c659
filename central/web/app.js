// Sharpeyes central console: log in, list incidents newest first, refresh on server-sent events.
"use strict";

const TOKEN_KEY = "sharpeyes.token";
const STATE_LABELS = {
  received: "已接收 received", triage: "待审核 triage", registered: "已立案 registered",
  dispatched: "已派遣 dispatched", in_progress: "处置中 in progress", feedback: "已反馈 feedback",
  checking: "核查中 checking", closed: "已结案 closed", returned: "已退回 returned",
};
const CONDITION_LABELS = { active: "持续 active", cleared: "已消除 cleared" };

const $ = (id) => document.getElementById(id);
let token = sessionStorage.getItem(TOKEN_KEY);
let source = null;
let pollTimer = null;
let seen = new Set();

function fmt(ts) {
  return ts ? new Date(ts).toLocaleString("zh-CN", { hour12: false }) : "—";
}

function cell(text, cls) {
  const td = document.createElement("td");
  td.textContent = text ?? "—";
  if (cls) td.className = cls;
  return td;
}

async function api(path) {
  const res = await fetch(path, { headers: { Authorization: `Bearer ${token}` } });
  if (res.status === 401) { logout(); throw new Error("session expired"); }
  if (!res.ok) throw new Error(`${path}: HTTP ${res.status}`);
  return res.json();
}

async function refresh() {
  const data = await api("/api/v1/incidents?limit=100");
  $("total").textContent = `(${data.total})`;
  const rows = $("rows");
  rows.replaceChildren();
  for (const inc of data.items) {
    const tr = document.createElement("tr");
    if (seen.size && !seen.has(inc.id)) tr.className = "fresh";
    const snap = document.createElement("td");
    if (inc.latest_snapshot_sha256) {
      const img = document.createElement("img");
      img.loading = "lazy";
      img.alt = inc.title;
      img.src = `/api/v1/evidence/${inc.latest_snapshot_sha256}?access_token=${encodeURIComponent(token)}`;
      img.onerror = () => { img.replaceWith(document.createTextNode("待上传 pending")); };
      snap.append(img);
    } else {
      snap.textContent = "—";
    }
    tr.append(
      snap,
      cell(inc.title.split(" @ ")[0]),
      cell(inc.camera),
      cell(inc.zone),
      cell(STATE_LABELS[inc.state] ?? inc.state),
      cell(CONDITION_LABELS[inc.condition] ?? inc.condition, `cond-${inc.condition}`),
      cell(fmt(inc.started_at)),
      cell(fmt(inc.last_observed_at)),
      cell(inc.assigned_worker),
    );
    rows.append(tr);
  }
  seen = new Set(data.items.map((i) => i.id));
  $("empty").hidden = data.items.length > 0;
}

function startLive() {
  // Server-sent events push a refresh; a slow poll covers a dropped stream or another central process.
  source = new EventSource(`/api/v1/stream?access_token=${encodeURIComponent(token)}`);
  source.addEventListener("incidents", () => refresh().catch(console.error));
  source.onopen = () => { $("live").textContent = "● 实时 live"; $("live").className = "live on"; };
  source.onerror = () => { $("live").textContent = "○ 重连中 reconnecting"; $("live").className = "live"; };
  pollTimer = setInterval(() => refresh().catch(console.error), 30000);
}

async function showIncidents() {
  const me = await api("/api/v1/me");
  $("who-name").textContent = `${me.username} (${me.role}${me.worker ? " · " + me.worker : ""})`;
  $("who").hidden = false;
  $("login").hidden = true;
  $("incidents").hidden = false;
  await refresh();
  startLive();
}

function logout() {
  sessionStorage.removeItem(TOKEN_KEY);
  token = null;
  if (source) source.close();
  if (pollTimer) clearInterval(pollTimer);
  $("who").hidden = true;
  $("incidents").hidden = true;
  $("login").hidden = false;
}

$("login").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  $("login-error").textContent = "";
  const res = await fetch("/api/v1/auth/token", { method: "POST", body: new URLSearchParams(new FormData(ev.target)) });
  if (!res.ok) {
    $("login-error").textContent = "用户名或密码错误 Wrong username or password";
    return;
  }
  token = (await res.json()).access_token;
  sessionStorage.setItem(TOKEN_KEY, token);
  showIncidents().catch((e) => { $("login-error").textContent = String(e); });
});

$("logout").addEventListener("click", logout);

if (token) showIncidents().catch(() => logout()); else logout();
