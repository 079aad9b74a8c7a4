/* Visgate console: the playground page.
 *
 * Submits a job to the deployment through the control plane (the session cookie and the CSRF
 * token authenticate it), polls the job every second until it ends, then shows the image, the
 * 3D model (viewer.js) and the timings. Everything that came from the server or the model is
 * shown with textContent, never parsed as HTML.
 */
(function () {
  "use strict";

  const TERMINAL = new Set(["COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT"]);
  const POLL_MS = 1000;
  const MAX_TRANSIENT_FAILURES = 5; // network errors or 5xx in a row before polling gives up
  const IMAGE_TYPES = { png: "image/png", jpeg: "image/jpeg", jpg: "image/jpeg", webp: "image/webp" };
  const REQUIRED_TEXT = { "3d": "text", image: "prompt" };

  const form = document.getElementById("playground-form");
  if (!form) return;

  const byId = (id) => document.getElementById(id);
  const ui = {
    run: byId("pg-run"),
    status: byId("job-status"),
    error: byId("job-error"),
    figure: byId("job-image"),
    model: byId("job-model"),
    canvas: byId("viewer-canvas"),
    download: byId("glb-download"),
    summary: byId("job-model-summary"),
    timings: byId("job-timings"),
  };
  const state = { running: false, viewer: null, glbUrl: null };
  const numbers = new Intl.NumberFormat();

  /** An error to show as "type: message", with the fields it names. */
  class ShownError extends Error {
    constructor(type, message, { fields = [], requestId = null, transient = false } = {}) {
      super(message);
      this.type = type;
      this.fields = Array.isArray(fields) ? fields : [];
      this.requestId = requestId;
      this.transient = transient;
    }
  }

  function jobsUrl() {
    return `/v1/deployments/${encodeURIComponent(form.dataset.deployment || "")}/jobs`;
  }

  function pollInterval() {
    const ms = Number(form.dataset.pollMs);
    return Number.isFinite(ms) && ms >= 50 ? ms : POLL_MS;
  }

  function csrfToken() {
    const meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.content : "";
  }

  function field(name) {
    return form.elements.namedItem(name);
  }

  /** The job input from the form, and the problems found before anything is sent. */
  function readInput(kind) {
    const problems = [];
    const text = (name) => (field(name) ? field(name).value : "");
    const integer = (name) => {
      const element = field(name);
      if (!element) return undefined;
      if (element.validity && element.validity.badInput) {
        problems.push({ field: name, message: "Enter a whole number." });
        return undefined;
      }
      const raw = element.value.trim();
      if (raw === "") return undefined;
      const value = Number(raw);
      if (!Number.isSafeInteger(value)) problems.push({ field: name, message: "Enter a whole number." });
      return value;
    };
    const required = REQUIRED_TEXT[kind] || "text";
    if (!text(required).trim()) problems.push({ field: required, message: "This field is required." });
    let input;
    if (kind === "image") {
      input = { prompt: text("prompt"), seed: integer("seed") };
    } else {
      input = {
        text: text("text"),
        quality: text("quality") || undefined,
        num_parts: integer("num_parts"),
        seed: integer("seed"),
        return_glb: true,
        return_image: true,
      };
    }
    for (const key of Object.keys(input)) if (input[key] === undefined) delete input[key];
    return { input, problems };
  }

  async function readBody(response) {
    const text = await response.text();
    try {
      return text ? JSON.parse(text) : null;
    } catch (_error) {
      return text; // not JSON: a proxy's error page, say
    }
  }

  function errorFromResponse(response, body) {
    const transient = response.status >= 500 || response.status === 429;
    const detail = body && typeof body === "object" ? body.error : null;
    if (detail && typeof detail === "object" && detail.type) {
      return new ShownError(String(detail.type), String(detail.message || ""), {
        fields: detail.fields,
        requestId: detail.request_id || null,
        transient,
      });
    }
    return new ShownError(`HTTP ${response.status}`, response.statusText || "the request failed", { transient });
  }

  async function callApi(method, url, body) {
    const headers = { Accept: "application/json", "X-CSRF-Token": csrfToken() };
    const init = { method, headers, credentials: "same-origin", cache: "no-store" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(url, init);
    } catch (_error) {
      throw new ShownError("NetworkError", "the control plane could not be reached", { transient: true });
    }
    const payload = await readBody(response);
    if (!response.ok) throw errorFromResponse(response, payload);
    if (!payload || typeof payload !== "object") {
      throw new ShownError("BadResponse", `the control plane answered ${response.status} without JSON`);
    }
    return payload;
  }

  /** A failed job's `error`: the worker sends a JSON string {type, message, fields?}. */
  function jobError(raw) {
    let detail = raw;
    if (typeof raw === "string") {
      try {
        detail = JSON.parse(raw);
      } catch (_error) {
        return new ShownError("JobFailed", raw);
      }
    }
    if (detail && typeof detail === "object" && (detail.type || detail.message)) {
      return new ShownError(String(detail.type || "JobFailed"), String(detail.message || ""), {
        fields: detail.fields,
      });
    }
    return new ShownError("JobFailed", raw ? String(raw) : "the job failed without saying why");
  }

  function delay(ms) {
    return new Promise((resolve) => setTimeout(resolve, ms));
  }

  function showProgress(status, started) {
    const seconds = Math.floor((performance.now() - started) / 1000);
    ui.status.textContent = `${status} · ${seconds} s`;
  }

  async function pollJob(id, status, started) {
    let job = { id, status };
    let fetched = false; // the submit answer has no output, even if it says COMPLETED
    let failures = 0;
    while (!fetched || !TERMINAL.has(job.status)) {
      await delay(pollInterval());
      try {
        job = await callApi("GET", `${jobsUrl()}/${encodeURIComponent(id)}`);
        fetched = true;
        failures = 0;
      } catch (error) {
        failures += 1;
        if (!error.transient || failures >= MAX_TRANSIENT_FAILURES) throw error;
      }
      showProgress(job.status || "UNKNOWN", started);
    }
    return job;
  }

  /** "body.input.text" or "input.text" → "text": the form field a server error is about. */
  function fieldName(path) {
    const parts = String(path).split(".");
    while (parts.length > 1 && (parts[0] === "body" || parts[0] === "input")) parts.shift();
    return parts[0];
  }

  function showFieldErrors(fields) {
    const messages = new Map();
    for (const item of fields) {
      if (!item || typeof item !== "object") continue;
      const name = fieldName(item.field);
      messages.set(name, [...(messages.get(name) || []), String(item.message || "invalid")]);
    }
    for (const [name, list] of messages) {
      const slot = byId(`pg-${name}-error`);
      const input = byId(`pg-${name}`);
      if (!slot) continue; // not a field of this form: the summary message names it
      slot.textContent = list.join(" ");
      slot.hidden = false;
      if (input) input.setAttribute("aria-invalid", "true");
    }
    const first = form.querySelector('[aria-invalid="true"]'); // in the form's order
    if (first) first.focus();
  }

  function clearErrors() {
    ui.error.hidden = true;
    ui.error.textContent = "";
    delete ui.error.dataset.requestId;
    for (const slot of form.querySelectorAll(".field-error")) {
      slot.hidden = true;
      slot.textContent = "";
    }
    for (const input of form.querySelectorAll("[aria-invalid]")) input.removeAttribute("aria-invalid");
  }

  function showError(error) {
    const shown = error instanceof ShownError
      ? error
      : new ShownError(error && error.name ? error.name : "Error", error && error.message ? error.message : String(error));
    ui.error.textContent = shown.message ? `${shown.type}: ${shown.message}` : shown.type;
    if (shown.requestId) ui.error.dataset.requestId = shown.requestId;
    ui.error.hidden = false;
    showFieldErrors(shown.fields);
  }

  function resetOutput() {
    clearErrors();
    ui.figure.hidden = true;
    ui.figure.querySelector("img").removeAttribute("src");
    ui.model.hidden = true;
    ui.summary.textContent = "";
    ui.timings.replaceChildren();
    if (state.viewer) state.viewer.clear();
    if (state.glbUrl) URL.revokeObjectURL(state.glbUrl);
    state.glbUrl = null;
    ui.download.setAttribute("href", "#");
  }

  function decodeBase64(text) {
    const binary = atob(text);
    const bytes = new Uint8Array(binary.length);
    for (let i = 0; i < binary.length; i += 1) bytes[i] = binary.charCodeAt(i);
    return bytes;
  }

  function showImage(base64, format) {
    const type = IMAGE_TYPES[String(format || "png").toLowerCase()] || "image/png";
    ui.figure.querySelector("img").src = `data:${type};base64,${base64}`;
    ui.figure.hidden = false;
  }

  function plural(count, word) {
    return `${numbers.format(count)} ${word}${count === 1 ? "" : "s"}`;
  }

  function modelSummary(output, drawn) {
    const parts = Array.isArray(output.parts) ? output.parts : [];
    const names = parts.map((part) => String(part && part.name)).join(", ");
    const pieces = [];
    if (output.concept) pieces.push(String(output.concept));
    if (parts.length) pieces.push(`${plural(parts.length, "part")}: ${names}`);
    if (drawn) pieces.push(plural(drawn.triangles, "triangle"));
    if (output.path === "fallback") pieces.push("fallback path");
    if (output.cached) pieces.push("from the cache");
    return pieces.join(" · ");
  }

  function showModel(output) {
    const bytes = decodeBase64(output.glb);
    state.glbUrl = URL.createObjectURL(new Blob([bytes], { type: "model/gltf-binary" }));
    ui.download.href = state.glbUrl;
    ui.model.hidden = false; // first: the viewer sizes the canvas from its layout
    if (!window.VisgateViewer) throw new ShownError("ViewerError", "the 3D viewer script did not load");
    state.viewer = state.viewer || window.VisgateViewer.create(ui.canvas);
    try {
      ui.summary.textContent = modelSummary(output, state.viewer.load(bytes.buffer));
    } catch (error) {
      ui.summary.textContent = `${modelSummary(output, null)} · the model cannot be shown here; the GLB file can still be downloaded`;
      throw error;
    }
  }

  function addTiming(name, ms) {
    const term = document.createElement("dt");
    const value = document.createElement("dd");
    term.textContent = name;
    value.textContent = `${numbers.format(Math.round(ms))} ms`;
    ui.timings.append(term, value);
  }

  function showTimings(output, job) {
    const timings = output.timings_ms;
    if (timings && typeof timings === "object") {
      for (const [name, ms] of Object.entries(timings)) if (Number.isFinite(ms)) addTiming(name, ms);
    }
    if (Number.isFinite(job.delayTime)) addTiming("Runpod queue", job.delayTime);
    if (Number.isFinite(job.executionTime)) addTiming("Runpod execution", job.executionTime);
  }

  function showOutput(job) {
    const output = job.output && typeof job.output === "object" ? job.output : {};
    if (output.error) throw jobError(output.error); // reported to arrive as COMPLETED
    showTimings(output, job);
    if (typeof output.image === "string" && output.image) showImage(output.image, output.image_format || output.format);
    if (typeof output.glb === "string" && output.glb) showModel(output);
  }

  function finish(job) {
    if (job.status === "COMPLETED") return showOutput(job);
    if (job.status === "FAILED") throw jobError(job.error);
    const why = job.status === "TIMED_OUT" ? "the job ran past its time limit" : "the job was cancelled";
    throw new ShownError(job.status, why);
  }

  function setRunning(running) {
    state.running = running;
    ui.run.disabled = running;
    form.setAttribute("aria-busy", String(running));
  }

  async function onSubmit(event) {
    event.preventDefault();
    if (state.running) return;
    resetOutput();
    const kind = form.dataset.kind === "image" ? "image" : "3d";
    const { input, problems } = readInput(kind);
    if (problems.length) {
      showFieldErrors(problems);
      return;
    }
    setRunning(true);
    const started = performance.now();
    ui.status.textContent = "Submitting…";
    try {
      const submitted = await callApi("POST", jobsUrl(), { input });
      if (!submitted.id) throw new ShownError("BadResponse", "the control plane returned no job id");
      showProgress(submitted.status || "IN_QUEUE", started);
      const job = await pollJob(String(submitted.id), submitted.status, started);
      finish(job);
    } catch (error) {
      if (ui.status.textContent === "Submitting…") ui.status.textContent = "";
      showError(error);
    } finally {
      setRunning(false);
    }
  }

  form.addEventListener("submit", onSubmit);
})();
