// Calls to the server's public endpoints. Every failure becomes an ApiError whose message is what the
// server said ({"error": "..."}), so panels can show it as it is.

export class ApiError extends Error {
  constructor(status, message) {
    super(status ? `${status}: ${message}` : message);
    this.status = status;
  }
}

const KEY_STORAGE = "nnserve.apiKey";
export const UNAUTHORIZED_EVENT = "nnserve:unauthorized";

/** The API key the user gave this tab (sessionStorage: it leaves with the tab), or "". */
export function apiKey() {
  return sessionStorage.getItem(KEY_STORAGE) || "";
}

export function setApiKey(key) {
  if (key) sessionStorage.setItem(KEY_STORAGE, key);
  else sessionStorage.removeItem(KEY_STORAGE);
}

/** The header every call carries once a key is set (servers with NNSERVE_AUTH_INFERENCE=true want one). */
export function authHeaders() {
  const key = apiKey();
  return key ? { Authorization: `Bearer ${key}` } : {};
}

async function errorFrom(response) {
  if (response.status === 401) window.dispatchEvent(new CustomEvent(UNAUTHORIZED_EVENT));
  let message = response.statusText || "request failed";
  try {
    const body = await response.json();
    if (body && typeof body.error === "string") message = body.error;
    else if (body && body.error && body.error.message) message = body.error.message;
  } catch {
    // Not JSON: keep the status text.
  }
  return new ApiError(response.status, message);
}

/** fetch() that throws ApiError on a network failure or any status other than 2xx. */
export async function send(method, path, body, options = {}) {
  const init = { method, headers: authHeaders(), signal: options.signal };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError(0, `cannot reach the server (${method} ${path}): ${error.message}`);
  }
  if (!response.ok) throw await errorFrom(response);
  return response;
}

export async function getJSON(path, options) {
  return (await send("GET", path, undefined, options)).json();
}

export async function postJSON(path, body, options) {
  return (await send("POST", path, body, options)).json();
}

/** An image URL an <img> can show: the path itself, or (with a key, which <img> cannot send) a blob. */
export async function imageSource(path) {
  if (!apiKey()) return path;
  return URL.createObjectURL(await (await send("GET", path)).blob());
}

/** Model names go into paths: quote them as a client library would. */
export function modelPath(name) {
  return `/v2/models/${encodeURIComponent(name)}`;
}

export { errorFrom };
