// Types for wshub.js, the browser client served by wshub at /wshub.js.

export interface ConnectOptions {
  /** The WebSocket endpoint; default: this page's server, `/ws`. */
  url?: string;
  systemId: string;
  /** A client token (`--client-auth jwt`), or a function returning a fresh one: it is asked
   *  again on every reconnect. */
  token?: string | (() => string | Promise<string>);
  /** Resume as the same client after a drop, with the frames missed meanwhile. Default true. */
  recovery?: boolean;
  /** Longest wait between reconnect attempts, in ms. Default 30000. */
  maxDelayMs?: number;
}

export interface Welcome {
  clientId: string;
  /** True: the same client as before the drop, still in its groups, missed frames follow.
   *  False after a drop: a new client; ask your backend to bind it again. */
  recovered: boolean;
  /** Frames replayed after a resume. */
  missed: number;
  /** Why a resume was not honoured: invalid_token, expired, last_not_held, bound_passed, node_lost. */
  reason?: string;
}

/** A frame pushed by the backend (send_to_*). */
export interface Message {
  messageId: string;
  sendUserId: string;
  code: number;
  msg: string;
  data: unknown;
}

/** A 1001 (online: true) or 1002 (online: false) notice about a member of one of its groups. */
export interface Notice {
  online: boolean;
  clientId: string;
  userId: string;
  extend: string;
  frame: Message;
}

export type State =
  | { state: "connecting" }
  | { state: "open" }
  | { state: "reconnecting"; delayMs: number; code: number | null; reason: string }
  | { state: "dropped" }
  | { state: "closed"; code: number; reason: string };

export interface Connection {
  on(event: "welcome", handler: (welcome: Welcome) => void): Connection;
  on(event: "message", handler: (message: Message) => void): Connection;
  on(event: "notice", handler: (notice: Notice) => void): Connection;
  on(event: "state", handler: (state: State) => void): Connection;
  /** Sends a client message: a string as is, anything else as JSON. False when not open. */
  send(value: unknown): boolean;
  /** Abandons the connection as a cut network would (no close handshake: the server keeps the
   *  client for a resume) and stays away until reconnect(). For trying out recovery. */
  drop(): void;
  /** Connects again now (resuming, with recovery on). */
  reconnect(): void;
  /** Closes for good: no more reconnecting. */
  close(): void;
  /** The current clientId ("" before the first welcome). */
  readonly clientId: string;
}

export function connect(options: ConnectOptions): Connection;
