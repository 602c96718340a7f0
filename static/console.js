// wshub console: plain JavaScript, no build step, no network fetch but this server.
"use strict";

const $ = (sel, root = document) => root.querySelector(sel);
const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));
const MAX_FRAMES = 500;
const MAX_CALLS = 200;

const store = {
  get(key, fallback) {
    try { const v = localStorage.getItem("wshub." + key); return v === null ? fallback : JSON.parse(v); }
    catch { return fallback; }
  },
  set(key, value) {
    try { localStorage.setItem("wshub." + key, JSON.stringify(value)); } catch { /* private mode */ }
  },
};

/** The API token: kept for this tab only (sessionStorage) unless "remember" is ticked, since
 *  an admin token in localStorage outlives the tab and is readable by any script of this origin. */
const tokenStore = {
  remembered() {
    try { return localStorage.getItem("wshub.token") !== null; } catch { return false; }
  },
  get() {
    try { return sessionStorage.getItem("wshub.token") || JSON.parse(localStorage.getItem("wshub.token") || '""'); }
    catch { return ""; }
  },
  set(token, remember) {
    try {
      sessionStorage.setItem("wshub.token", token);
      if (remember) localStorage.setItem("wshub.token", JSON.stringify(token));
      else localStorage.removeItem("wshub.token");
    } catch { /* private mode */ }
  },
};

const state = {
  token: tokenStore.get(),
  system: store.get("system", ""),
  recentSystems: store.get("systems", []),
  clients: [],      // { n, card, ws, id, state }
  nextClient: 1,
};

// ---------------------------------------------------------------------------------------------
// REST

function shellQuote(s) { return "'" + String(s).replace(/'/g, "'\\''") + "'"; }

function curlFor(path, headers, body) {
  const parts = ["curl -s", shellQuote(location.origin + path)];
  for (const [k, v] of Object.entries(headers)) {
    if (k === "Authorization") parts.push('-H "Authorization: Bearer $TOKEN"');
    else if (k !== "Content-Type") parts.push("-H " + shellQuote(k + ": " + v));
  }
  parts.push("-d " + shellQuote(body));
  return parts.join(" ");
}

async function copyText(text) {
  try { await navigator.clipboard.writeText(text); return true; }
  catch {
    const ta = document.createElement("textarea");
    ta.value = text; document.body.appendChild(ta); ta.select();
    const ok = document.execCommand("copy"); ta.remove(); return ok;
  }
}

/** POST /api/<method>; logs the call and returns {status, body} (status 0: no answer). */
async function api(method, body, { system = state.system, withSystem = true, note = "" } = {}) {
  const path = "/api/" + method;
  const headers = { "Content-Type": "application/json" };
  if (state.token) headers["Authorization"] = "Bearer " + state.token;
  if (withSystem) headers["SystemId"] = system;
  const text = JSON.stringify(body);
  const entry = logCall(path, headers, text, note);
  let status = 0, reply;
  try {
    const res = await fetch(path, { method: "POST", headers, body: text });
    status = res.status;
    const raw = await res.text();
    try { reply = JSON.parse(raw); } catch { reply = raw; }
  } catch (err) {
    reply = "no answer: the server is unreachable (" + err.message + ")";
  }
  finishCall(entry, status, reply, !note);
  if (status === 401 || status === 403) tokenVerdict(status, reply);
  else if (status === 200 && state.token) setTokenStatus("ok", "accepted");
  return { status, body: reply };
}

function logCall(path, headers, body, note) {
  const shown = Object.entries(headers)
    .map(([k, v]) => k === "Authorization" ? "Authorization: Bearer …" : k + ": " + v).join("\n");
  const li = document.createElement("li");
  li.className = "call";
  // The summary names the method only (the request below has the whole path), so that it
  // fits the column.
  li.innerHTML = `<details><summary><span class="method"></span><span class="badge muted status">…</span></summary>
    <div class="what">request <button type="button" class="secondary small copy">copy curl</button></div><pre class="req"></pre>
    <div class="what">reply</div><pre class="reply">…</pre></details>`;
  $(".method", li).textContent = path.replace(/^\/api\//, "");
  $(".method", li).title = "POST " + path;
  if (note) {
    const span = document.createElement("span");
    span.className = "note";
    span.textContent = note;
    $(".method", li).after(span);
  }
  $(".req", li).textContent = "POST " + path + "\n" + shown + "\n\n" + prettyJson(body);
  const curl = curlFor(path, headers, body);
  $(".copy", li).addEventListener("click", async (e) => {
    e.preventDefault();
    const ok = await copyText(curl);
    e.target.textContent = ok ? "copied" : "copy failed";
    setTimeout(() => { e.target.textContent = "copy curl"; }, 1200);
  });
  const log = $("#call-log");
  log.prepend(li);
  while (log.children.length > MAX_CALLS) log.lastElementChild.remove();
  return li;
}

function finishCall(li, status, reply, openOnError) {
  const badge = $(".status", li);
  badge.textContent = status === 0 ? "no answer" : String(status);
  badge.className = "badge status " + (status === 200 ? "ok" : status === 0 || status >= 500 ? "bad" : "warn");
  $(".reply", li).textContent = typeof reply === "string" ? reply : formatJson(reply);
  li.dataset.status = String(status);
  if (status !== 200 && openOnError) $("details", li).open = true;
}

function prettyJson(text) {
  try { return formatJson(JSON.parse(text)); } catch { return text; }
}

/** Indented JSON, but an array of plain values stays on one line (lists of clientIds). */
function formatJson(value) {
  return JSON.stringify(value, null, 2).replace(/\[\s*\n([^\[\]{}]*?)\n\s*\]/g,
    (_, items) => "[" + items.split("\n").map((line) => line.trim()).join(" ") + "]");
}

// ---------------------------------------------------------------------------------------------
// Token

function setTokenStatus(kind, text) {
  const el = $("#token-status");
  el.className = "badge " + kind;
  el.textContent = text;
}

/** What a 401 or 403 from any call says about the token. */
function tokenVerdict(status, reply) {
  const msg = reply && reply.msg ? reply.msg : "";
  if (status === 401) setTokenStatus("bad", "rejected (401): " + msg);
  else if (/scoped/.test(msg)) setTokenStatus("warn", "403: " + msg);
}

/** Asks the server whether the token passes authentication (check_token: any valid token). */
async function checkToken() {
  if (!state.token) { setTokenStatus("warn", "no token"); }
  const res = await api("check_token", {}, { withSystem: false, note: "token check" });
  const msg = res.body && res.body.msg ? res.body.msg : "";
  if (res.status === 0) setTokenStatus("bad", "server unreachable");
  else if (res.status === 401) setTokenStatus("bad", "rejected (401): " + msg);
  else if (res.status !== 200) setTokenStatus("bad", res.status + ": " + msg);
  else if (!state.token) setTokenStatus("ok", "auth off");
  else {
    const scope = res.body.data && res.body.data.systemId;
    setTokenStatus("ok", "accepted");
    $("#token-status").title = scope ? "acts for system " + scope + " only" : "acts for every system";
  }
}

// ---------------------------------------------------------------------------------------------
// System

function useSystem(system) {
  state.system = system;
  store.set("system", system);
  $("#current-system").textContent = system || "none";
  $("#system-id").value = system;
  if (system) $("#client-error").hidden = true;
  if (system && !state.recentSystems.includes(system)) {
    state.recentSystems.unshift(system);
    state.recentSystems = state.recentSystems.slice(0, 20);
    store.set("systems", state.recentSystems);
  }
  renderRecent();
}

function renderRecent() {
  const sel = $("#system-recent");
  sel.length = 1;
  for (const s of state.recentSystems) sel.add(new Option(s, s));
}

async function register() {
  const system = $("#system-id").value.trim();
  if (!system) { $("#system-id").focus(); return; }
  const res = await api("register", { systemId: system }, { withSystem: false });
  // 409: already registered, which is as good for trying things out.
  if (res.status === 200 || res.status === 409) useSystem(system);
}

/** Shows the current system's settings (get_system: the secret is never returned). */
async function showSystem() {
  const res = await api("get_system", {});
  const data = res.body && typeof res.body === "object" && "data" in res.body ? res.body.data : res.body;
  $("#system-result").textContent = res.status + "\n" + (typeof data === "string" ? data : JSON.stringify(data, null, 2));
  if (res.status === 200 && data && data.webhook) $("#webhook-url").value = data.webhook.url;
  if (res.status === 200 && data && data.presence) $("#presence").value = data.presence;
}

/** Sets whom the current system's group notices are about: each connection, or each user. */
async function savePresence() {
  const res = await api("update_system", { presence: $("#presence").value });
  if (res.status === 200) await showSystem();
  else $("#system-result").textContent = res.status + "\n" + (res.body && res.body.msg ? res.body.msg : JSON.stringify(res.body));
}

/** Sets the current system's webhook (every event), or removes it. */
async function saveWebhook(remove) {
  const webhook = remove ? null : { url: $("#webhook-url").value.trim(), secret: $("#webhook-secret").value };
  const res = await api("update_system", { webhook });
  if (res.status === 200) {
    $("#webhook-secret").value = "";
    if (remove) $("#webhook-url").value = "";
    await showSystem();
  } else {
    $("#system-result").textContent = res.status + "\n" + (res.body && res.body.msg ? res.body.msg : JSON.stringify(res.body));
  }
}

// ---------------------------------------------------------------------------------------------
// Clients

/** The browser client every frontend can use (served at /wshub.js): the console's cards use it
 *  too, so it is exercised whenever someone opens the console. */
let hubLibrary = null;
function wshubLibrary() {
  hubLibrary = hubLibrary || import("/wshub.js");
  return hubLibrary;
}

function openClient() {
  const why = $("#client-error");
  if (!state.system) {
    why.textContent = "Register a system first (or pick one used before): a client connects to a system.";
    why.hidden = false;
    $("#system-id").focus();
    return;
  }
  why.hidden = true;
  const card = $("#client-card").content.firstElementChild.cloneNode(true);
  const client = { n: state.nextClient++, card, conn: null, id: "", state: "connecting", system: state.system };
  state.clients.push(client);
  $(".label", card).textContent = "#" + client.n;
  $(".client-id", card).addEventListener("click", () => client.id && copyText(client.id));
  $(".close-ws", card).addEventListener("click", () => client.conn && client.conn.close());
  $(".kick", card).addEventListener("click", () => client.id && api("close_client", { clientId: client.id }, { system: client.system }));
  $(".reconnect", card).addEventListener("click", () => connect(client));
  $(".drop", card).addEventListener("click", () => client.conn && client.conn.drop());
  $(".resume", card).addEventListener("click", () => client.conn && client.conn.reconnect());
  $(".remove", card).addEventListener("click", () => removeClient(client));
  $("#no-clients").hidden = true;
  $("#client-cards").append(card);
  connect(client);
}

/** Connects a new client for the card (wshub.js, recovery on: a dropped card resumes). */
async function connect(client) {
  const { card } = client;
  setClientState(client, "connecting", "connecting");
  client.id = "";
  $(".client-id", card).textContent = "…";
  let lib;
  try { lib = await wshubLibrary(); }
  catch (err) { addFrame(client, "closed", "—", "could not load /wshub.js: " + err.message); setClientState(client, "closed", "failed"); return; }
  const conn = lib.connect({ systemId: client.system });
  client.conn = conn;
  conn.on("welcome", (w) => onWelcome(client, w));
  conn.on("message", (frame) => onFrame(client, frame));
  conn.on("notice", (notice) => onFrame(client, notice.frame));
  conn.on("state", (s) => onState(client, conn, s));
}

function onState(client, conn, s) {
  if (client.conn !== conn) return;
  if (s.state === "connecting") {
    setClientState(client, "connecting", client.id ? "resuming" : "connecting");
  } else if (s.state === "dropped") {
    addFrame(client, "closed", "—", "dropped · frames are no longer read; the server keeps them");
    setClientState(client, "dropped", "dropped");
    refreshClientSelects();
  } else if (s.state === "reconnecting") {
    const why = s.code ? "closed " + s.code + (s.reason ? " · " + s.reason : "") : "connection lost";
    addFrame(client, "closed", String(s.code || "—"), why + " · reconnecting in " + s.delayMs + " ms");
    setClientState(client, "connecting", "reconnecting");
  } else if (s.state === "closed") {
    const why = s.reason || "no reason given";
    addFrame(client, "closed", String(s.code), "closed · " + why);
    setClientState(client, "closed", "closed " + s.code);
    $(".state", client.card).title = why;
    refreshClientSelects();
  }
}

function onWelcome(client, w) {
  client.id = w.clientId;
  client.card.dataset.clientId = client.id;
  $(".client-id", client.card).textContent = client.id;
  setClientState(client, "open", "open");
  refreshClientSelects();
  let text = "connected as " + client.id;
  if (w.recovered) text = "resumed as " + client.id + " · missed " + w.missed;
  else if (w.reason) text += " · not resumed: " + w.reason + " (a new client)";
  addFrame(client, "welcome", "0", text);
}

/** A frame the server pushed (a push, or a 1001/1002 notice), as wshub.js hands it over. */
function onFrame(client, frame) {
  const raw = JSON.stringify(frame);
  const code = Number(frame.code);
  let kind = "push";
  if (code === 1001) kind = "online";
  else if (code === 1002) kind = "offline";
  else if (code < 0) kind = "err";
  let text = frame.msg ? frame.msg : "";
  if (kind === "online" || kind === "offline") {
    try {
      const who = JSON.parse(frame.data);
      text += " · " + short(who.clientId) + (who.userId ? " (" + who.userId + ")" : "");
    } catch { text += " · " + JSON.stringify(frame.data); }
  } else if ("data" in frame) {
    text += (text ? " · " : "") + "data: " + JSON.stringify(frame.data);
  }
  if (frame.sendUserId) text += " · from " + frame.sendUserId;
  addFrame(client, kind, String(frame.code), text, raw);
}

function short(id) { return typeof id === "string" && id.length > 10 ? id.slice(0, 8) + "…" : String(id); }

function addFrame(client, kind, code, text, raw) {
  const li = document.createElement("li");
  li.className = kind;
  const time = new Date().toLocaleTimeString([], { hour12: false });
  li.innerHTML = '<span class="meta"></span><span class="code"></span><span class="text"></span>';
  $(".meta", li).textContent = time;
  $(".code", li).textContent = code;
  $(".text", li).textContent = text;
  if (raw) li.title = raw;
  const list = $(".frames", client.card);
  list.prepend(li); // newest on top, always in view
  while (list.children.length > MAX_FRAMES) list.lastElementChild.remove();
}

function setClientState(client, stateName, label) {
  client.state = stateName;
  client.card.dataset.state = stateName;
  const badge = $(".state", client.card);
  badge.textContent = label;
  badge.className = "state badge " + (stateName === "open" ? "ok" : stateName === "closed" ? "bad" : "muted");
  $(".reconnect", client.card).hidden = stateName !== "closed";
  $(".remove", client.card).hidden = stateName !== "closed";
  $(".close-ws", client.card).disabled = stateName !== "open";
  $(".kick", client.card).disabled = stateName !== "open";
  $(".drop", client.card).hidden = stateName !== "open";
  $(".resume", client.card).hidden = stateName !== "dropped";
}

function removeClient(client) {
  if (client.conn) client.conn.close();
  client.card.remove();
  state.clients = state.clients.filter((c) => c !== client);
  $("#no-clients").hidden = state.clients.length > 0;
  refreshClientSelects();
}

/** Clients the server holds: open ones, and dropped ones it keeps for a resume. */
function openClients() { return state.clients.filter((c) => (c.state === "open" || c.state === "dropped") && c.id); }

function refreshClientSelects() {
  for (const sel of $$(".client-select")) {
    const keep = sel.value;
    sel.length = 0;
    for (const c of openClients()) sel.add(new Option("#" + c.n + "  " + c.id, c.id));
    if (!sel.length) sel.add(new Option("no open client", ""));
    if (keep && openClients().some((c) => c.id === keep)) sel.value = keep;
  }
}

// ---------------------------------------------------------------------------------------------
// Groups, sends, inspection

async function bind(unbind) {
  const clientId = $("#bind-client").value;
  const groupName = $("#bind-group").value.trim();
  if (!clientId) return;
  if (!groupName) { $("#bind-group").focus(); return; }
  if (unbind) await api("unbind_from_group", { clientId, groupName });
  else await api("bind_to_group", { clientId, groupName, userId: $("#bind-user").value, extend: $("#bind-extend").value });
}

function target() { return $("input[name=target]:checked").value; }

function updateTargetFields() {
  const t = target();
  for (const el of $$("[data-for]")) el.hidden = el.dataset.for !== t;
}

/** Reads the message fields; returns null (and shows why) when something is invalid. */
function readMessage() {
  const error = $("#send-error");
  const fail = (msg) => { error.textContent = msg; error.hidden = false; return null; };
  error.hidden = true;
  const message = {};
  const code = $("#send-code").value.trim();
  if (code) {
    if (!/^-?\d+$/.test(code)) return fail("code must be a whole number");
    message.code = Number(code);
  }
  if ($("#send-msg").value) message.msg = $("#send-msg").value;
  if ($("#send-user").value) message.sendUserId = $("#send-user").value;
  const raw = $("#send-data").value;
  if ($("#data-json").checked) {
    if (raw.trim()) {
      try { message.data = JSON.parse(raw); } catch (err) { return fail("data is not valid JSON: " + err.message); }
    }
  } else if (raw) {
    message.data = raw;
  }
  return message;
}

async function send() {
  const message = readMessage();
  if (!message) return;
  switch (target()) {
    case "client": {
      const clientId = $("#send-client").value;
      if (!clientId) return;
      await api("send_to_client", { clientId, ...message });
      break;
    }
    case "clients": {
      const clientIds = state.clients.filter((c) => c.id && $(".select-client", c.card).checked).map((c) => c.id);
      if (!clientIds.length) { $("#send-error").textContent = "tick one or more clients first"; $("#send-error").hidden = false; return; }
      await api("send_to_clients", { clientIds, ...message });
      break;
    }
    case "group": {
      const groupName = $("#send-group").value.trim();
      if (!groupName) { $("#send-group").focus(); return; }
      await api("send_to_group", { groupName, ...message });
      break;
    }
    case "user": {
      const userId = $("#send-user-id").value.trim();
      if (!userId) { $("#send-user-id").focus(); return; }
      await api("send_to_user", { userId, ...message });
      break;
    }
    default:
      await api("send_to_system", message);
  }
}

async function inspect(method, body) {
  const res = await api(method, body);
  const result = $("#inspect-result");
  result.textContent = res.status + "\n" + (typeof res.body === "string" ? res.body : formatJson(res.body && "data" in res.body ? res.body.data : res.body));
  // The panel sits low in its column: bring the answer into view.
  result.scrollIntoView({ block: "nearest" });
}

/** Shows whether the MQTT bridge is connected, when there is one (from /healthz). */
async function watchBridge() {
  try {
    const res = await fetch("/healthz");
    const body = res.ok ? await res.json() : null;
    const bridgeState = body && body.data ? body.data.mqtt : undefined;
    const badge = $("#mqtt-status");
    badge.hidden = bridgeState === undefined;
    if (bridgeState !== undefined) {
      badge.textContent = "MQTT " + bridgeState;
      badge.className = "badge " + (bridgeState === "connected" ? "ok" : "bad");
    }
  } catch (_) { /* /healthz elsewhere (--internal-port): no badge */ }
  setTimeout(watchBridge, 5000);
}

// ---------------------------------------------------------------------------------------------
// Wiring

function init() {
  $("#token").value = state.token;
  $("#remember-token").checked = tokenStore.remembered();
  const saveToken = () => {
    state.token = $("#token").value.trim();
    tokenStore.set(state.token, $("#remember-token").checked);
  };
  $("#save-token").addEventListener("click", () => { saveToken(); checkToken(); });
  $("#remember-token").addEventListener("change", saveToken);
  $("#token").addEventListener("keydown", (e) => { if (e.key === "Enter") $("#save-token").click(); });
  $("#register").addEventListener("click", register);
  $("#system-id").addEventListener("keydown", (e) => { if (e.key === "Enter") register(); });
  $("#use-system").addEventListener("click", () => { const v = $("#system-recent").value; if (v) useSystem(v); });
  $("#save-webhook").addEventListener("click", () => saveWebhook(false));
  $("#remove-webhook").addEventListener("click", () => saveWebhook(true));
  $("#save-presence").addEventListener("click", savePresence);
  $("#show-system").addEventListener("click", showSystem);
  $("#open-client").addEventListener("click", openClient);
  $("#select-all").addEventListener("click", () => {
    const boxes = state.clients.filter((c) => c.state === "open").map((c) => $(".select-client", c.card));
    const all = boxes.every((b) => b.checked);
    for (const b of boxes) b.checked = !all;
  });
  $("#bind").addEventListener("click", () => bind(false));
  $("#unbind").addEventListener("click", () => bind(true));
  for (const r of $$("input[name=target]")) r.addEventListener("change", updateTargetFields);
  $("#send").addEventListener("click", send);
  $("#online-list").addEventListener("click", () => {
    const groupName = $("#inspect-group").value.trim() || $("#bind-group").value.trim();
    if (!groupName) { $("#inspect-group").focus(); return; }
    inspect("get_online_list", { groupName });
  });
  $("#all-groups").addEventListener("click", () => inspect("get_all_groups", {}));
  $("#online-users").addEventListener("click", () => {
    const groupName = $("#inspect-group").value.trim();
    inspect("get_online_users", groupName ? { groupName } : {});
  });
  $("#list-clients").addEventListener("click", () => inspect("list_clients", {}));
  const withUser = (method) => () => {
    const userId = $("#inspect-user").value.trim() || $("#bind-user").value.trim();
    if (!userId) { $("#inspect-user").focus(); return; }
    inspect(method, { userId });
  };
  $("#user-info").addEventListener("click", withUser("get_user_info"));
  $("#close-user").addEventListener("click", withUser("close_user"));
  $("#client-info").addEventListener("click", () => {
    const clientId = $("#send-client").value || $("#bind-client").value;
    if (clientId) inspect("get_client_info", { clientId });
  });
  $("#clear-calls").addEventListener("click", () => { $("#call-log").textContent = ""; });
  watchBridge();
  useSystem(state.system);
  refreshClientSelects();
  updateTargetFields();
  if (state.token) checkToken();
}

init();
