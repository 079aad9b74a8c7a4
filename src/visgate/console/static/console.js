"use strict";
// One deployment's page, kept current without a reload: status changes from the event stream
// (which replays what was missed after a reconnect, by Last-Event-ID), cost and webhook
// deliveries re-read every few seconds, and the worker log on demand. The session cookie
// authenticates every call; nothing here holds an API key.
(function () {
  const root = document.getElementById("deployment");
  if (!root) return;
  const id = root.dataset.id;
  const base = "/v1/deployments/" + encodeURIComponent(id);
  const SETTLED = new Set(["ready", "failed", "webhook_failed", "deleted"]);
  const SERVING = new Set(["ready", "webhook_failed"]);
  const $ = (sel) => document.getElementById(sel);
  let minLag = null; // smallest (arrival - event_at) seen: the service's clock is ours minus it
  let source = null;
  let followTimer = null;

  function duration(seconds) {
    if (seconds === null || seconds === undefined || Number.isNaN(seconds)) return "…";
    if (seconds < 1) return Math.round(seconds * 1000) + " ms";
    if (seconds < 10) return seconds.toFixed(1) + " s";
    if (seconds < 120) return Math.round(seconds) + " s";
    const minutes = Math.floor(seconds / 60);
    if (minutes < 120) return minutes + " min " + Math.floor(seconds % 60) + " s";
    return Math.floor(minutes / 60) + " h " + (minutes % 60) + " min";
  }

  function money(value, perHour) {
    if (value === null || value === undefined) return "—";
    const text = value >= 1 ? "$" + value.toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 }) : "$" + value.toFixed(4);
    return perHour ? text + "/h" : text;
  }

  const seconds = (iso) => Date.parse(iso) / 1000;

  function statusBadge(el, status) {
    el.textContent = status;
    el.className = "status status-" + status;
  }

  function cell(text, cls) {
    const td = document.createElement("td");
    if (cls) td.className = cls;
    td.textContent = text;
    return td;
  }

  function rows() {
    return Array.from(document.querySelectorAll("#timeline tbody tr"));
  }

  function addPhase(seq, status, at, message) {
    if (document.querySelector('#timeline tr[data-seq="' + seq + '"]')) return;
    const all = rows();
    const last = all[all.length - 1];
    if (last) last.querySelector(".dur").textContent = duration(seconds(at) - seconds(last.dataset.at));
    const tr = document.createElement("tr");
    tr.dataset.seq = String(seq);
    tr.dataset.at = at;
    tr.dataset.status = status;
    const badge = document.createElement("span");
    statusBadge(badge, status);
    const first = document.createElement("td");
    first.appendChild(badge);
    tr.append(first, cell(SETTLED.has(status) ? duration(0) : "…", "dur"), cell(message, "msg"));
    document.querySelector("#timeline tbody").appendChild(tr);
  }

  function tick() {
    const all = rows();
    const last = all[all.length - 1];
    if (!last || SETTLED.has(last.dataset.status) || root.dataset.settled === "true") return;
    const now = Date.now() / 1000 - (minLag || 0);
    last.querySelector(".dur").textContent = duration(Math.max(0, now - seconds(last.dataset.at)));
  }

  function showError(error) {
    const box = $("dep-error");
    if (!error) return;
    $("dep-error-type").textContent = error.type;
    $("dep-error-message").textContent = error.message;
    const steps = JSON.parse(box.dataset.nextSteps || "{}");
    $("dep-error-next").textContent = steps[error.type] || steps[""] || "";
    box.hidden = false;
  }

  function apply(data) {
    const status = data.event_status;
    const lag = Date.now() / 1000 - seconds(data.event_at);
    minLag = minLag === null ? lag : Math.min(minLag, lag);
    addPhase(Number(data.__seq), status, data.event_at, data.event_message || "");
    statusBadge($("dep-status"), data.status);
    root.dataset.status = data.status;
    $("endpoint-id").textContent = data.endpoint_id || "—";
    const url = $("endpoint-url");
    url.textContent = "";
    if (data.endpoint_url) {
      const code = document.createElement("code");
      code.textContent = data.endpoint_url;
      url.appendChild(code);
    } else url.textContent = "—";
    $("dep-gpu").textContent = data.gpu || "—";
    $("playground-link").classList.toggle("hidden", !SERVING.has(data.status));
    const del = $("delete-link");
    if (del && (data.status === "deleting" || data.status === "deleted")) del.remove();
    showError(data.error);
    if (data.last_log) soon(refreshLogs);
  }

  function settle(status) {
    root.dataset.settled = "true";
    $("live").textContent = "";
    // As `visgate deploy --wait` counts it: from the first status to the first settled one.
    const all = rows();
    const first = all.find((tr) => SETTLED.has(tr.dataset.status));
    if (first) $("timeline-total").textContent = duration(seconds(first.dataset.at) - seconds(all[0].dataset.at));
    refreshCost();
    refreshDeliveries();
    if (status === "deleted") stopFollowing();
  }

  // The stream replays every status change, then follows; the service closes it once the
  // deployment has settled and everything was sent. EventSource would reconnect after that
  // close, so the page closes it itself when the last status it got is a settled one.
  function follow() {
    if (root.dataset.settled === "true") return;
    let lastStatus = null;
    source = new EventSource(base + "/events");
    source.addEventListener("status", (event) => {
      const data = JSON.parse(event.data);
      data.__seq = event.lastEventId;
      lastStatus = data.event_status;
      apply(data);
      $("live").textContent = "Following live: " + data.event_status + "…";
    });
    source.onerror = () => {
      if (lastStatus !== null && SETTLED.has(lastStatus)) {
        source.close();
        settle(lastStatus);
      } else if (source.readyState === EventSource.CLOSED) {
        $("live").textContent = "Live updates stopped: reload the page (you may need to sign in again).";
      } else {
        $("live").textContent = "Connection lost: reconnecting…";
      }
    };
  }

  async function getJson(path) {
    const response = await fetch(path, { credentials: "same-origin", headers: { Accept: "application/json" } });
    const body = await response.json().catch(() => null);
    if (!response.ok) {
      const error = body && body.error ? body.error : { type: "HTTP " + response.status, message: response.statusText };
      throw error;
    }
    return body;
  }

  // A replay brings several events at once: one read of the log after the burst is enough.
  let pending = null;
  function soon(task) {
    if (pending) clearTimeout(pending);
    pending = setTimeout(() => { pending = null; task(); }, 250);
  }

  async function refreshLogs() {
    try {
      const body = await getJson(base + "/logs?lines=100");
      const list = $("control-logs");
      list.textContent = "";
      for (const line of body.lines) {
        const li = document.createElement("li");
        li.className = "level-" + line.level;
        const time = document.createElement("time");
        time.dateTime = line.at;
        time.textContent = line.at;
        const msg = document.createElement("span");
        msg.className = "msg";
        msg.textContent = line.message;
        li.append(time, " ", msg);
        list.appendChild(li);
      }
    } catch (_) { /* the next status change tries again */ }
  }

  async function refreshCost() {
    try {
      const cost = await getJson(base + "/cost");
      $("cost-price").textContent = money(cost.price_per_hour, true);
      $("cost-workers").textContent = String(cost.workers);
      $("cost-spend").textContent = money(cost.spend, false);
      $("cost-source").textContent = cost.spend_source;
    } catch (_) { /* keep the last figures */ }
  }

  async function refreshDeliveries() {
    try {
      const body = await getJson(base + "/deliveries");
      if (!body.items.length) return;
      const tbody = document.querySelector("#deliveries tbody");
      tbody.textContent = "";
      for (const d of body.items) {
        const answers = d.attempts.map((a) => (a.status_code ? String(a.status_code) : a.error || "—")).join(", ");
        const tr = document.createElement("tr");
        const values = [d.event, d.state, String(d.attempts.length), answers, d.next_attempt_at || "—"];
        ["Event", "State", "Attempts", "Answers", "Next retry"].forEach((label, i) => {
          const td = cell(values[i]);
          td.dataset.label = label;
          tr.appendChild(td);
        });
        tbody.appendChild(tr);
      }
    } catch (_) { /* keep the last table */ }
  }

  async function loadWorkerLogs() {
    const status = $("worker-logs-status");
    try {
      const body = await getJson(base + "/logs?source=worker&lines=200");
      const pre = $("worker-logs");
      // Keep to the newest lines unless the reader scrolled up to read older ones.
      const atEnd = pre.hidden || pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
      pre.textContent = body.lines.map((l) => (l.ts ? l.ts + " " : "") + l.line).join("\n") || "(the workers have printed nothing yet)";
      pre.hidden = false;
      if (atEnd) pre.scrollTop = pre.scrollHeight;
      status.textContent = body.lines.length + " lines, read " + new Date().toLocaleTimeString();
    } catch (error) {
      status.textContent = (error.type || "Error") + ": " + (error.message || "could not read the worker log");
    }
  }

  function stopFollowing() {
    if (followTimer) clearInterval(followTimer);
    followTimer = null;
    const box = $("worker-logs-follow");
    if (box) box.checked = false;
  }

  $("worker-logs-load").addEventListener("click", loadWorkerLogs);
  $("worker-logs-follow").addEventListener("change", (event) => {
    if (event.target.checked) {
      loadWorkerLogs();
      followTimer = setInterval(loadWorkerLogs, 3000);
    } else stopFollowing();
  });

  follow();
  setInterval(tick, 1000);
  setInterval(() => {
    if (root.dataset.status !== "deleted") refreshCost();
    refreshDeliveries();
    refreshLogs(); // webhook attempts and teardown retries write lines between status changes
  }, 10000);
})();
