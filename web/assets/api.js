// kiln's APIs, called with the token the person signed in with. The registry answers errors as
// `{"errors": [{"detail": …}]}` (Cargo's form) and the executor as `{"error": CODE, "message":
// …}`; both become an ApiError with a status, a code and a message for people.

const TOKEN_KEY = "kiln-token";

/** The signed-in token, kept for this tab only. */
export function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

/** Signs in with `value`, or out with `null`. */
export function setToken(value) {
  if (value) sessionStorage.setItem(TOKEN_KEY, value);
  else sessionStorage.removeItem(TOKEN_KEY);
}

/** A refused request. */
export class ApiError extends Error {
  constructor(status, code, message, body) {
    super(message);
    this.status = status;
    this.code = code;
    this.body = body;
  }
}

async function errorOf(response) {
  let code = String(response.status);
  let message = response.statusText || `HTTP ${response.status}`;
  let body = null;
  try {
    body = await response.json();
    if (Array.isArray(body.errors)) {
      message = body.errors.map((e) => e.detail).join("; ");
    } else if (body.message) {
      message = body.message;
      code = body.error ?? code;
    }
  } catch {
    // Not JSON: the status says enough.
  }
  return new ApiError(response.status, code, message, body);
}

/** Sends a request; answers the response, or throws an ApiError. */
export async function request(method, path, { json, body, accept, headers = {}, cache } = {}) {
  const sent = { ...headers };
  const t = token();
  if (t) sent.Authorization = t;
  if (json !== undefined) {
    sent["Content-Type"] = "application/json";
    body = JSON.stringify(json);
  }
  if (accept) sent.Accept = accept;
  const response = await fetch(path, { method, headers: sent, body, ...(cache ? { cache } : {}) });
  if (!response.ok) throw await errorOf(response);
  return response;
}

/** GET `path` as JSON. */
export async function getJson(path) {
  return (await request("GET", path)).json();
}

/** Sends `json` with `method` to `path`; answers the JSON answer. */
export async function sendJson(method, path, json) {
  return (await request(method, path, { json })).json();
}

/** GET `path` as bytes. */
export async function getBytes(path) {
  return new Uint8Array(await (await request("GET", path)).arrayBuffer());
}

/**
 * Runs `notebook` on the executor, calling `onEvent` with each NDJSON event as it arrives
 * (`preflight`, `blocked`, `cell-started`, `output`, `cell-finished`, `run-finished`, `error`).
 */
export async function streamRun(notebook, { notebookId, seed, onEvent }) {
  const query = new URLSearchParams();
  if (notebookId) query.set("notebook", notebookId);
  if (seed !== undefined && seed !== null) query.set("seed", String(seed));
  const response = await request("POST", `/v1/runs?${query}`, {
    json: notebook,
    accept: "application/x-ndjson",
  });
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    let end;
    while ((end = buffer.indexOf("\n")) >= 0) {
      const line = buffer.slice(0, end);
      buffer = buffer.slice(end + 1);
      if (line.trim()) onEvent(JSON.parse(line));
    }
  }
}

/** Decodes an output chunk (`text` or `base64`) into bytes. */
export function chunkBytes(event) {
  if (event.bytes instanceof Uint8Array) return event.bytes;
  if (event.text !== undefined) return new TextEncoder().encode(event.text);
  if (event.base64 !== undefined) {
    const raw = atob(event.base64);
    const out = new Uint8Array(raw.length);
    for (let i = 0; i < raw.length; i += 1) out[i] = raw.charCodeAt(i);
    return out;
  }
  return new Uint8Array();
}
