// wshub.js: the browser client for wshub. A dependency-free ES module, served by every wshub at
// /wshub.js (types at /wshub.d.ts).
//
//   import { connect } from "/wshub.js";
//   const c = connect({ systemId: "shop" });
//   c.on("welcome", (w) => sendClientIdToBackend(w.clientId, w.recovered));
//   c.on("message", (m) => show(m.data));
//
// It reconnects by itself (exponential backoff with full jitter), honours the close codes, and
// by default asks for connection state recovery: after a drop it comes back as the same client,
// with its groups and every frame it missed. See the manual's "Reconnecting" section.

const FIRST_DELAY_MS = 500;
const MAX_DELAY_MS = 30000;
/** 1001 from the server: it is restarting; come back soon. */
const SOON_MS = 1000;

/** Close codes after which the client stops: reconnecting would not help. */
const FINAL = new Map([
  [1000, "closed by the backend"],
  [1002, "protocol error"],
  [1003, "binary frames are not accepted"],
  [1009, "frame too big"],
  [4009, "resumed elsewhere"],
]);
/** Close codes that need a fresh token to get anywhere. */
const REFUSED = new Set([1008, 4001]);

function defaultUrl() {
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  return proto + "//" + location.host + "/ws";
}

/**
 * Connects to wshub and stays connected.
 * @param {object} options
 * @param {string} [options.url] the WebSocket endpoint (default: this page's server, /ws)
 * @param {string} options.systemId
 * @param {string | (() => string | Promise<string>)} [options.token] a client token, or a
 *   function returning a fresh one (asked again on every reconnect)
 * @param {boolean} [options.recovery] resume as the same client after a drop (default true)
 * @param {number} [options.maxDelayMs] longest wait between attempts (default 30000)
 */
export function connect(options) {
  return new Connection(options);
}

class Connection {
  constructor(options) {
    if (!options || !options.systemId) throw new TypeError("connect: systemId is required");
    this.url = options.url || defaultUrl();
    this.systemId = options.systemId;
    this.token = options.token;
    this.recovery = options.recovery !== false;
    this.maxDelayMs = options.maxDelayMs || MAX_DELAY_MS;
    this.handlers = { welcome: [], message: [], notice: [], state: [] };
    this.ws = null;
    this.attempt = 0;
    this.stopped = false;
    this.paused = false;
    this.timer = null;
    this.clientId = "";
    this.resumeToken = "";
    this.last = "";
    this.refusedOnce = false;
    // Handlers are attached by the caller after connect() returns.
    queueMicrotask(() => this.open());
  }

  /** Adds a handler for "welcome", "message", "notice" or "state". */
  on(event, handler) {
    if (!this.handlers[event]) throw new TypeError("unknown event: " + event);
    this.handlers[event].push(handler);
    return this;
  }

  /** Sends a client message (a string as is, anything else as JSON); false when not open. */
  send(value) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(typeof value === "string" ? value : JSON.stringify(value));
    return true;
  }

  /** Abandons the connection as a cut network would (no close handshake, so the server keeps
   *  the client for a resume) and stays away until reconnect(): for trying out how an app
   *  behaves after a drop. */
  drop() {
    clearTimeout(this.timer);
    this.paused = true;
    if (this.ws) {
      const ws = this.ws;
      this.ws = null;
      ws.onmessage = null;
      ws.onclose = null;
    }
    this.emit("state", { state: "dropped" });
  }

  /** Connects again now (resuming, with recovery on): after drop(), or when the app knows the
   *  network changed and does not want to wait for the backoff. */
  reconnect() {
    if (this.stopped) return;
    clearTimeout(this.timer);
    this.paused = false;
    if (this.ws) this.drop();
    this.paused = false;
    this.open();
  }

  /** Closes for good: no more reconnecting. */
  close() {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.ws) {
      const ws = this.ws;
      this.ws = null;
      ws.onclose = null;
      ws.close(1000);
    }
    this.emit("state", { state: "closed", code: 1000, reason: "closed by the app" });
  }

  emit(event, value) {
    for (const handler of this.handlers[event]) {
      try { handler(value); } catch (err) { setTimeout(() => { throw err; }); }
    }
  }

  async endpoint() {
    const params = new URLSearchParams({ systemId: this.systemId });
    if (this.token) {
      params.set("token", typeof this.token === "function" ? await this.token() : this.token);
    }
    if (this.recovery && this.resumeToken) {
      params.set("resume", this.resumeToken);
      params.set("last", this.last);
    } else if (this.recovery) {
      params.set("recovery", "1");
    }
    return this.url + (this.url.includes("?") ? "&" : "?") + params;
  }

  async open() {
    if (this.stopped || this.paused) return;
    this.emit("state", { state: "connecting" });
    let url;
    try { url = await this.endpoint(); }
    catch (err) { this.retry(null, "could not get a token: " + err); return; }
    if (this.stopped) return;
    let ws;
    try { ws = new WebSocket(url); }
    catch (err) { this.retry(null, String(err)); return; }
    this.ws = ws;
    let refusal = "";
    ws.onmessage = (event) => {
      let frame;
      try { frame = JSON.parse(event.data); } catch { return; }
      if (frame.code === -1001) { refusal = frame.msg; return; }
      if (frame.code === 0 && frame.data && frame.data.clientId && !frame.messageId) {
        this.welcome(frame.data);
        return;
      }
      if (frame.messageId) this.last = frame.messageId;
      if (frame.code === 1001 || frame.code === 1002) {
        let who = {};
        try { who = JSON.parse(frame.data); } catch { /* not a notice of ours */ }
        this.emit("notice", { online: frame.code === 1001, clientId: who.clientId, userId: who.userId, extend: who.extend, frame });
      } else {
        this.emit("message", frame);
      }
    };
    ws.onclose = (event) => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.closed(event.code, refusal || event.reason);
    };
  }

  welcome(data) {
    this.attempt = 0;
    this.refusedOnce = false;
    const recovered = data.recovered === true;
    // A new client (not recovered) starts a new stream of messageIds.
    if (!recovered) this.last = "";
    this.clientId = data.clientId;
    this.resumeToken = data.resumeToken || "";
    this.emit("state", { state: "open" });
    this.emit("welcome", {
      clientId: data.clientId,
      recovered,
      missed: data.missed || 0,
      reason: data.reason,
    });
  }

  closed(code, reason) {
    if (this.stopped) return;
    if (FINAL.has(code)) return this.stop(code, reason || FINAL.get(code));
    if (REFUSED.has(code)) {
      // Only a fresh token can change the answer, and only once in a row.
      if (typeof this.token !== "function" || this.refusedOnce) return this.stop(code, reason);
      this.refusedOnce = true;
    }
    if (code === 1001) this.attempt = 0;
    this.retry(code, reason, code === 1001 ? Math.random() * SOON_MS : undefined);
  }

  stop(code, reason) {
    this.stopped = true;
    this.emit("state", { state: "closed", code, reason });
  }

  retry(code, reason, delayMs) {
    const cap = Math.min(this.maxDelayMs, FIRST_DELAY_MS * 2 ** this.attempt);
    const delay = delayMs !== undefined ? delayMs : Math.random() * cap;
    this.attempt += 1;
    this.emit("state", { state: "reconnecting", delayMs: Math.round(delay), code, reason });
    this.timer = setTimeout(() => this.open(), delay);
  }
}
