// Calls to the server's public endpoints. Every failure becomes an ApiError whose message is what the
// server said ({"error": "..."}), so panels can show it as it is.

export class ApiError extends Error {
  constructor(status, message) {
    super(status ? `${status}: ${message}` : message);
    this.status = status;
  }
}

async function errorFrom(response) {
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
  const init = { method, headers: {}, signal: options.signal };
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

/** Model names go into paths: quote them as a client library would. */
export function modelPath(name) {
  return `/v2/models/${encodeURIComponent(name)}`;
}

export { errorFrom };
