// Central's REST API: the only way this console reads or changes anything. Every path lives here.

import { DESK_ROLES } from "./roles.js";

const TOKEN_KEY = "sharpeyes.token";
const V1 = "/api/v1";

export class ApiError extends Error {
  constructor(status, detail) {
    super(typeof detail === "string" ? detail : detail?.error || JSON.stringify(detail));
    this.status = status;
    this.detail = detail;
  }
}

let token = sessionStorage.getItem(TOKEN_KEY);
let onUnauthorized = () => {};

export function setUnauthorizedHandler(fn) {
  onUnauthorized = fn;
}

export function hasToken() {
  return Boolean(token);
}

export function clearToken() {
  token = null;
  sessionStorage.removeItem(TOKEN_KEY);
  // The session cookie (images, the live stream) is HttpOnly: only central can clear it.
  fetch(`${V1}/auth/logout`, { method: "POST" }).catch(() => {});
}

export async function login(username, password) {
  const res = await fetch(`${V1}/auth/token`, { method: "POST", body: new URLSearchParams({ username, password }) });
  if (!res.ok) throw new ApiError(res.status, await detailOf(res));
  token = (await res.json()).access_token;
  sessionStorage.setItem(TOKEN_KEY, token);
}

async function detailOf(res) {
  try {
    return (await res.json()).detail ?? res.statusText;
  } catch {
    return res.statusText;
  }
}

async function call(method, path, body) {
  const init = { method, headers: { Authorization: `Bearer ${token}` } };
  if (body instanceof FormData) init.body = body;
  else if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers["Content-Type"] = "application/json";
  }
  const res = await fetch(V1 + path, init);
  if (res.status === 401) {
    clearToken();
    onUnauthorized();
    throw new ApiError(401, await detailOf(res));
  }
  if (!res.ok) throw new ApiError(res.status, await detailOf(res));
  return res.status === 204 ? null : res.json();
}

function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) if (v !== undefined && v !== null && v !== "") q.set(k, v);
  const text = q.toString();
  return text ? `?${text}` : "";
}

/**
 * URL for <img>/<video>. They cannot send an Authorization header: the HttpOnly session cookie set
 * at login authenticates them, so no token ever sits in a URL. Images come redacted (faces and
 * plates blurred); with a reason, desk roles get the original, and the reason is recorded.
 */
export function evidenceUrl(sha256, reason = null) {
  const base = `${V1}/evidence/${sha256}`;
  return reason ? `${base}${query({ original: "true", reason })}` : base;
}

let deskUser = false;

/** Whether the logged-in user may ask for originals (and video clips). */
export function isDesk() {
  return deskUser;
}

export async function me() {
  const who = await call("GET", "/me");
  deskUser = DESK_ROLES.includes(who.role);
  return who;
}
export const incidentReads = (id) => call("GET", `/incidents/${id}/reads`);
export const piplRegister = () => call("GET", "/pipl-register");
export const incidents = (params) => call("GET", `/incidents${query(params)}`);
export const incident = (id) => call("GET", `/incidents/${id}`);
export const history = (id) => call("GET", `/incidents/${id}/history`);
export const act = (id, action, body = {}) => call("POST", `/incidents/${id}/actions/${action}`, body);
export const supervision = () => call("GET", "/supervision");
export const grid = () => call("GET", "/grid");
export const stats = (params) => call("GET", `/stats${query(params)}`);
export const statsIndex = (month) => call("GET", `/stats/index${query({ month })}`);
export const sites = () => call("GET", "/sites");
export const users = () => call("GET", "/users");
export const createUser = (body) => call("POST", "/users", body);
export const updateUser = (username, body) => call("PATCH", `/users/${encodeURIComponent(username)}`, body);
export const units = () => call("GET", "/units");
export const command = (id) => call("GET", `/commands/${id}`);
export const releaseIncidentHold = (id, reason) => call("POST", `/incidents/${id}/release-hold`, { reason });
export const releaseActuator = (edge, actuator, reason) =>
  call("POST", `/edges/${encodeURIComponent(edge)}/actuators/${encodeURIComponent(actuator)}/release`, { reason });
export const suppressions = () => call("GET", "/suppressions");
export const addSuppression = (body) => call("POST", "/suppressions", body);
export const endSuppression = (id) => call("DELETE", `/suppressions/${id}`);
// Guarded changes: `extra` carries `reason` and `confirm_removal` (see removal.js).
export const pushZones = (camera, zones, extra = {}) =>
  call("PUT", `/cameras/${encodeURIComponent(camera)}/zones`, { zones, ...extra });
export const configVersions = (edge) => call("GET", `/edges/${encodeURIComponent(edge)}/config/versions`);
export const restoreConfig = (edge, version, extra = {}) =>
  call("POST", `/edges/${encodeURIComponent(edge)}/config/versions/${version}/restore`, extra);
// The inventory (GET /cameras is searched and paged by central); every change answers 202 {command_id, edge, version, also}.
export const cameras = (params) => call("GET", `/cameras${query(params)}`);
export const inventory = () => call("GET", "/inventory");
export const edgeDrift = () => call("GET", "/edge-drift");
export const addCamera = (edge, camera, extra = {}) => call("POST", "/cameras", { edge, camera, ...extra });
export const editCamera = (camera, changes, extra = {}) =>
  call("PATCH", `/cameras/${encodeURIComponent(camera)}`, { camera: changes, ...extra });
export const moveCamera = (camera, body) => call("POST", `/cameras/${encodeURIComponent(camera)}/move`, body);
export const retireCamera = (camera, extra = {}) => call("POST", `/cameras/${encodeURIComponent(camera)}/retire`, extra);
export const addEdge = (edge, extra = {}) => call("POST", "/edges", { edge, ...extra });
export const retireEdge = (edge, extra = {}) => call("POST", `/edges/${encodeURIComponent(edge)}/retire`, extra);
export const incidentLabels = (id) => call("GET", `/incidents/${id}/labels`);
export const saveIncidentLabels = (id, boxes) => call("PUT", `/incidents/${id}/labels`, { boxes });
export const models = () => call("GET", "/models");
export const modelStats = () => call("GET", "/stats/models");
export const promoteModel = (model, camera, reason) => call("POST", "/models/promote", { model, camera, reason });
export const rollbackModel = (camera, reason) => call("POST", "/models/rollback", { camera, reason });

export function upload(file) {
  const form = new FormData();
  form.append("file", file, file.name || "photo.jpg");
  return call("POST", "/uploads", form);
}

/**
 * Server-sent events: `onChange` runs whenever central says incidents changed. EventSource
 * reconnects by itself; `onState(true|false)` reports whether the stream is up.
 */
export function liveChanges(onChange, onState) {
  const source = new EventSource(`${V1}/stream`);
  source.addEventListener("incidents", () => onChange());
  source.onopen = () => onState(true);
  source.onerror = () => onState(false);
  return () => source.close();
}
