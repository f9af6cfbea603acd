// Entry point: server facts, model cards (refreshed every few seconds), live panel, try-it panels.

import { getJSON } from "./api.js";
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

  const refresh = async () => {
    await readiness();
    try {
      if (await status.refresh()) {
        $("server-provider").textContent = status.providers();
        tryIt.update();
      }
      pageError(null);
    } catch (error) {
      pageError(`Cannot read the model repository: ${error.message}`);
    }
    document.body.dataset.loaded = "true";
    setTimeout(refresh, STATUS_INTERVAL_MS);
  };
  await refresh();
}

main();
