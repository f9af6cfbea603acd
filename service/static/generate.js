// Text generation over the generate extension's SSE endpoint: text appears as the server sends it, with
// the time to first token and the decoding rate measured here, in the browser.

import { ApiError, authHeaders, errorFrom, modelPath } from "./api.js";
import { sseData } from "./sse.js";

const $ = (id) => document.getElementById(id);

function numberField(id, integer) {
  const raw = $(id).value.trim();
  if (raw === "") return undefined;
  return integer ? Number.parseInt(raw, 10) : Number.parseFloat(raw);
}

export class GeneratePanel {
  constructor() {
    this.model = null;
    this.controller = null;
    $("gen-run").addEventListener("click", () => this.run());
    $("gen-stop").addEventListener("click", () => this.controller && this.controller.abort());
    $("gen-prompt").addEventListener("keydown", (event) => {
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) this.run();
    });
  }

  select(model) {
    this.model = model;
    const generation = model.config.generation;
    if (generation) {
      const field = $("gen-max-tokens");
      field.max = String(generation.max_tokens_limit);
      field.value = String(Math.min(generation.default_max_tokens, generation.max_tokens_limit));
    }
  }

  parameters() {
    const parameters = {
      max_tokens: numberField("gen-max-tokens", true),
      temperature: numberField("gen-temperature", false),
      top_k: numberField("gen-top-k", true),
      top_p: numberField("gen-top-p", false),
      seed: numberField("gen-seed", true),
    };
    return Object.fromEntries(Object.entries(parameters).filter(([, v]) => v !== undefined && !Number.isNaN(v)));
  }

  figures({ tokens, started, first, last, finish }) {
    $("gen-tokens").textContent = String(tokens);
    $("gen-ttft").textContent = first === null ? "–" : `${(first - started).toFixed(0)} ms`;
    $("gen-tps").textContent = tokens > 1 && last > first ? ((tokens - 1) / ((last - first) / 1000)).toFixed(1) : "–";
    $("gen-finish").textContent = finish || "–";
  }

  async run() {
    if (this.controller) return;
    const path = `${modelPath(this.model.name)}/generate_stream`;
    const body = { text_input: $("gen-prompt").value, parameters: this.parameters() };
    $("gen-request").textContent = `POST ${path}\n${JSON.stringify(body)}`;
    const output = $("gen-output");
    const error = $("gen-error");
    output.textContent = "";
    error.hidden = true;
    this.controller = new AbortController();
    $("gen-run").disabled = true;
    $("gen-stop").disabled = false;
    const state = { tokens: 0, started: performance.now(), first: null, last: null, finish: "streaming…" };
    this.figures(state);
    try {
      const response = await fetch(path, {
        method: "POST",
        headers: { ...authHeaders(), "Content-Type": "application/json", Accept: "text/event-stream" },
        body: JSON.stringify(body),
        signal: this.controller.signal,
      });
      if (!response.ok) throw await errorFrom(response);
      for await (const data of sseData(response)) {
        const event = JSON.parse(data);
        if (event.error) throw new ApiError(0, typeof event.error === "string" ? event.error : JSON.stringify(event.error));
        if (event.text_output) {
          const now = performance.now();
          if (state.first === null) state.first = now;
          state.last = now;
          state.tokens += 1;
          output.textContent += event.text_output;
        }
        const finish = event.finish_reason || (event.details && event.details.finish_reason);
        if (finish) state.finish = finish;
        this.figures(state);
      }
      if (state.finish === "streaming…") state.finish = "done";
    } catch (failure) {
      if (failure.name === "AbortError") {
        state.finish = "stopped";
      } else {
        state.finish = "error";
        error.textContent = failure instanceof ApiError ? failure.message : `stream failed: ${failure.message}`;
        error.hidden = false;
      }
    } finally {
      this.figures(state);
      this.controller = null;
      $("gen-run").disabled = false;
      $("gen-stop").disabled = true;
    }
  }
}
