// Entry point: server facts, model cards (refreshed every few seconds), live panel, try-it panels.

import { UNAUTHORIZED_EVENT, apiKey, getJSON, setApiKey } from "./api.js";
import { LivePanel } from "./live.js";
import { ModelStatus } from "./status.js";
import { TryIt } from "./tryit.js";

const STATUS_INTERVAL_MS = 5000;
const $ = (id) => document.getElementById(id);

function pageError(message) {
  const element = $("page-error");
  element.textContent = message || "";
  element.hidden = !message;
}

async function readiness() {
  const element = $("server-ready");
  try {
    const response = await fetch("/v2/health/ready");
    const body = await response.json();
    element.textContent = body.ready ? "ready" : `not ready: ${body.reason}`;
    element.className = body.ready ? "ok" : "bad";
  } catch (error) {
    element.textContent = `unreachable (${error.message})`;
    element.className = "bad";
  }
}

const KEY_NEEDED = "This server wants an API key for its data: enter one above (NNSERVE_AUTH_INFERENCE is on).";

/** A 401 from any call shows the key form; a key entered there goes on every later call. */
function askForKeyWhenRefused(refresh) {
  const form = $("key-form");
  window.addEventListener(UNAUTHORIZED_EVENT, () => {
    form.hidden = false;
    pageError(apiKey() ? `The API key was refused. ${KEY_NEEDED}` : KEY_NEEDED);
  });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    setApiKey($("api-key").value.trim());
    $("api-key").value = "";
    form.hidden = true;
    pageError(null);
    refresh();
  });
}

async function main() {
  const status = new ModelStatus($("model-list"));
  const tryIt = new TryIt(status);
  $("model-list").addEventListener("click", (event) => {
    const button = event.target.closest("[data-try]");
    if (button) tryIt.open(button.dataset.try);
  });
  new LivePanel({
    table: $("live-table"),
    legend: $("chart-legend"),
    total: $("live-requests-total"),
    uptime: $("server-uptime"),
    error: $("live-error"),
  }).start();

  try {
    const server = await getJSON("/v2");
    $("server-version").textContent = `${server.name} ${server.version}`;
  } catch (error) {
    pageError(`Cannot read the server metadata: ${error.message}`);
  }

  let timer = null;
  const refresh = async () => {
    clearTimeout(timer);
    await readiness();
    try {
      if (await status.refresh()) {
        $("server-provider").textContent = status.providers();
        tryIt.update();
      }
      pageError(null);
    } catch (error) {
      if (error.status !== 401) pageError(`Cannot read the model repository: ${error.message}`);  // 401: the key form says it
    }
    document.body.dataset.loaded = "true";
    timer = setTimeout(refresh, STATUS_INTERVAL_MS);
  };
  askForKeyWhenRefused(refresh);
  await refresh();
}

main();
