// The jobs dashboard: REST for the first view, then Server-Sent Events for every change.
"use strict";

const PAGE_SIZE = 25;
const STATUSES = ["queued", "running", "completed", "failed", "cancelled"];
const FILTERS = ["status", "type", "project_id", "created_from", "created_to", "q", "error_type", "params", "paused"];
const $ = (selector, root = document) => root.querySelector(selector);

const state = {
  filters: {},
  cursors: [null], // cursor of each page visited; the last is the current page's
  nextCursor: null,
  nextIsStale: false,
  jobs: [],
  counted: new Set(), // jobs already in the chart, so a live update is not counted twice
  chart: null,
  openJob: null,
  log: { jobId: null, lines: [], dropped: 0 }, // the open job's log lines shown so far
  webhook: null, // the webhook whose delivery log is open
};

class ApiError extends Error {
  constructor(problem, status) {
    super(problem.detail || `HTTP ${status}`);
    this.status = status;
  }
}

// The sign-in cookie authenticates every request; changes also carry the session's
// CSRF token, which only a page of ours is given.
const CSRF = document.querySelector('meta[name="csrf"]');

function withCsrf(options) {
  if (!options.method || options.method === "GET" || !CSRF.content) return options;
  return { ...options, headers: { ...options.headers, [CSRF.dataset.header]: CSRF.content } };
}

async function api(path, options = {}) {
  let response;
  try {
    response = await fetch(path, { credentials: "same-origin", ...withCsrf(options) });
  } catch (error) {
    setReachable(false);
    throw new ApiError({ detail: "The API cannot be reached." }, 0);
  }
  setReachable(true);
  if (response.status === 401) location.assign("/login");
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new ApiError(body, response.status);
  return body;
}

async function signOut() {
  await api("/api/session", { method: "DELETE" }).catch(() => {});
  location.assign("/login");
}

function post(path, payload) {
  return api(path, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: payload === undefined ? undefined : JSON.stringify(payload),
  });
}

// ---- URL <-> filters: a filtered view can be shared and survives a reload ----

function readUrl() {
  const params = new URLSearchParams(location.search);
  const form = $("#filters");
  state.filters = {};
  for (const name of FILTERS) {
    const value = params.get(name) || "";
    form.elements[name].value = value;
    if (value) state.filters[name] = value;
  }
  state.openJob = params.get("job");
}

function writeUrl() {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(state.filters)) params.set(name, value);
  if (state.openJob) params.set("job", state.openJob);
  const query = params.toString();
  history.replaceState(null, "", query ? `?${query}` : location.pathname);
}

function toIso(localValue) {
  return localValue ? new Date(localValue).toISOString() : "";
}

// "format=parquet source=uploads/*": the API's `param.<name>=<value>` filters, one per pair.
function paramFilters(text) {
  return (text || "").split(/\s+/).filter(Boolean).map((pair) => {
    const at = pair.indexOf("=");
    return at > 0 ? [pair.slice(0, at), pair.slice(at + 1)] : [pair, ""];
  });
}

function listQuery(cursor) {
  const params = new URLSearchParams({ limit: String(PAGE_SIZE) });
  for (const [name, value] of Object.entries(state.filters)) {
    if (name === "params") {
      for (const [param, wanted] of paramFilters(value)) params.append(`param.${param}`, wanted);
    } else {
      params.set(name, name.startsWith("created_") ? toIso(value) : value);
    }
  }
  if (cursor) params.set("cursor", cursor);
  return params;
}

// The API's rule (param_filters.py) for a job the live feed brings: equal as text or as
// the JSON value the text spells, or, ending in `*`, a string parameter's prefix.
function paramMatches(actual, wanted) {
  if (wanted.endsWith("*")) return typeof actual === "string" && actual.startsWith(wanted.slice(0, -1));
  if (actual === null) return wanted === "null";
  return typeof actual !== "object" && actual !== undefined && (String(actual) === wanted || actual === Number(wanted));
}

function matchesFilters(job) {
  const f = state.filters;
  if (f.status && job.status !== f.status) return false;
  if (f.type && job.type !== f.type) return false;
  if (f.project_id && job.project_id !== f.project_id) return false;
  if (f.q && !job.id.includes(f.q)) return false;
  if (f.created_from && new Date(job.created_at) < new Date(f.created_from)) return false;
  if (f.created_to && new Date(job.created_at) >= new Date(f.created_to)) return false;
  if (f.error_type && job.error?.type !== f.error_type) return false;
  if (f.paused && String(job.paused) !== f.paused) return false;
  const wanted = new Map();
  for (const [name, value] of paramFilters(f.params)) wanted.set(name, [...(wanted.get(name) || []), value]);
  for (const [name, values] of wanted) {
    const params = job.params || {};
    if (!Object.hasOwn(params, name) || !values.some((value) => paramMatches(params[name], value))) return false;
  }
  return true;
}

// ---- loading ----

async function loadJobs() {
  const cursor = state.cursors[state.cursors.length - 1];
  try {
    const page = await api(`/api/jobs?${listQuery(cursor)}`);
    state.jobs = page.items;
    state.nextCursor = page.next_cursor;
    state.nextIsStale = false;
    renderTable();
  } catch (error) {
    notify(`Could not load jobs: ${error.message}`, true);
  }
}

async function loadStats() {
  const project = state.filters.project_id;
  const path = project
    ? `/api/jobs/projects/${encodeURIComponent(project)}/stats`
    : "/api/jobs/stats";
  try {
    renderStats(await api(path));
  } catch (error) {
    if (error.status !== 422) notify(`Could not load statistics: ${error.message}`, true);
  }
}

async function loadChart() {
  const params = new URLSearchParams({ window: $("#chart-window").value });
  if (state.filters.project_id) params.set("project_id", state.filters.project_id);
  try {
    state.chart = await api(`/api/jobs/timeseries?${params}`);
    state.counted = new Set(state.jobs.filter(isFinished).map((job) => job.id));
    renderChart();
  } catch (error) {
    /* the banner already says when the API is down */
  }
}

function reloadAll() {
  loadJobs();
  loadStats();
  loadChart();
  loadWebhooks();
}

// ---- webhooks of the project in the filter, and a webhook's delivery log ----

function webhooksPath() {
  return `/api/projects/${encodeURIComponent(state.filters.project_id)}/webhooks`;
}

async function loadWebhooks() {
  const panel = $("#webhooks");
  if (!state.filters.project_id) {
    panel.hidden = true;
    state.webhook = null;
    return;
  }
  let hooks;
  try {
    hooks = await api(webhooksPath());
  } catch (error) {
    panel.hidden = true; // no such project (yet), or none the token sees
    return;
  }
  panel.hidden = false;
  const body = $("#webhook-list tbody");
  body.replaceChildren(...hooks.map(webhookRow));
  $("#webhooks-empty").hidden = hooks.length > 0;
  if (state.webhook && !hooks.some((hook) => hook.id === state.webhook)) state.webhook = null;
  $("#deliveries").hidden = !state.webhook;
  if (state.webhook) loadDeliveries(state.webhook);
}

function webhookRow(hook) {
  const open = () => {
    state.webhook = hook.id;
    $("#deliveries").hidden = false;
    loadDeliveries(hook.id);
  };
  const remove = async () => {
    if (!confirm(`Delete the webhook to ${hook.url} and its delivery log?`)) return;
    try {
      await api(`${webhooksPath()}/${encodeURIComponent(hook.id)}`, { method: "DELETE" });
      notify("Webhook deleted");
    } catch (error) {
      notify(`Could not delete the webhook: ${error.message}`, true);
    }
    loadWebhooks();
  };
  return element(
    "tr",
    { "data-webhook-id": hook.id },
    element("td", {}, element("button", { type: "button", class: "link", onclick: open }, hook.url)),
    element("td", {}, hook.events.join(", ")),
    element("td", {}, hook.format),
    element("td", {}, hook.enabled ? "yes" : "no"),
    element("td", {}, hook.description ?? ""),
    element(
      "td",
      {},
      element("button", { type: "button", class: "secondary", onclick: open }, "Log"),
      " ",
      element("button", { type: "button", class: "secondary", onclick: remove }, "Delete"),
    ),
  );
}

async function loadDeliveries(webhookId) {
  try {
    const page = await api(`${webhooksPath()}/${encodeURIComponent(webhookId)}/deliveries?limit=50`);
    const rows = page.items.map((d) =>
      element(
        "tr",
        { "data-delivery-id": d.id },
        element("td", {}, element("code", {}, d.id)),
        element("td", {}, d.event),
        element(
          "td",
          {},
          element("button", { type: "button", class: "link", onclick: () => openDetail(d.job_id) }, d.job_id),
        ),
        element("td", {}, element("span", { class: `badge delivery-${d.status}` }, d.status)),
        element("td", {}, String(d.attempts)),
        element("td", {}, d.last_status_code === null ? "–" : String(d.last_status_code)),
        element("td", { class: "error-cell" }, d.last_error ?? ""),
        element("td", {}, formatTime(d.created_at)),
        element("td", {}, d.last_attempt_at ? formatTime(d.last_attempt_at) : "–"),
        element("td", {}, d.delivered_at ? formatTime(d.delivered_at) : "–"),
      ),
    );
    $("#delivery-log tbody").replaceChildren(...rows);
    $("#deliveries-empty").hidden = rows.length > 0;
    $("#deliveries-title").textContent = `Deliveries of ${webhookId}`;
  } catch (error) {
    notify(`Could not load the delivery log: ${error.message}`, true);
  }
}

// ---- rendering ----

function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (name === "class") node.className = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value);
  }
  for (const child of children) {
    if (child !== null && child !== undefined) node.append(child);
  }
  return node;
}

function renderStats(stats) {
  $('[data-stat="total"] .value').textContent = stats.total;
  for (const status of STATUSES) {
    $(`[data-stat="${status}"] .value`).textContent = stats.by_status[status] ?? 0;
  }
  $('[data-stat="paused"] .value').textContent = stats.paused ?? 0;
}

function formatTime(iso) {
  return iso ? new Date(iso).toLocaleString() : "–";
}

function durationSeconds(job) {
  if (!job.started_at) return null;
  const end = job.completed_at ? new Date(job.completed_at) : new Date();
  return Math.max(0, (end - new Date(job.started_at)) / 1000);
}

function formatDuration(seconds) {
  if (seconds === null) return "–";
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min ${Math.floor(seconds % 60)} s`;
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

function progressCell(job) {
  const { done, total, percent } = job.progress;
  const counts = total ? `${done} / ${total}` : `${done}`;
  return element(
    "div",
    { class: "progress" },
    element("progress", { max: "100", value: String(percent), "aria-label": `${percent}% done` }),
    element("span", { class: "percent" }, `${percent}%`),
    element("small", {}, counts),
  );
}

function actionsCell(job) {
  const cell = element("div", { class: "actions" });
  if ((job.status === "queued" || job.status === "running") && !job.cancel_requested) {
    const [action, label] = job.paused ? ["resume", "Resume"] : ["pause", "Pause"];
    cell.append(element("button", { type: "button", class: "secondary", "data-action": action, onclick: () => pauseOrResume(job, action) }, label));
  }
  if (job.status === "queued" || job.status === "running") {
    const label = job.cancel_requested ? "Cancelling…" : "Cancel";
    const button = element("button", { type: "button", class: "secondary", "data-action": "cancel", onclick: () => cancelJob(job) }, label);
    if (job.cancel_requested) button.disabled = true;
    cell.append(button);
  }
  if (job.status === "failed" || job.status === "cancelled") {
    cell.append(element("button", { type: "button", "data-action": "retry", onclick: () => retryJob(job) }, "Retry"));
  }
  return cell;
}

/** The status, and whether the job is paused: a paused job keeps its status. */
function statusBadges(job) {
  const status = element("span", { class: `badge status-${job.status}` }, job.status);
  if (!job.paused) return status;
  const since = job.paused_at ? `Paused since ${formatTime(job.paused_at)}` : "Paused";
  return element("span", {}, status, " ", element("span", { class: "badge paused", title: since }, "paused"));
}

/** A test run's overall status or a validation's verdict, which the result's JSON
 * otherwise hides among its counts; null for other jobs and older results. */
function verdictBadge(job) {
  const result = job.result || {};
  let verdict, tally;
  if (job.type === "test_run" && ["pass", "warn", "error"].includes(result.status)) {
    verdict = result.status;
    tally = `${result.passed} passed, ${result.warned ?? 0} warned, ${result.failed} failed`;
  } else if (job.type === "validation" && ["pass", "fail"].includes(result.verdict)) {
    verdict = result.verdict;
    tally = `${result.invalid} invalid of ${result.valid + result.invalid}, max_invalid ${result.max_invalid}`;
  } else {
    return null;
  }
  return element("span", {}, element("span", { class: `badge verdict-${verdict}` }, verdict), ` ${tally}`);
}

function jobRow(job) {
  return element(
    "tr",
    { "data-job-id": job.id, "data-status": job.status },
    element("td", { class: "id" }, element("button", { type: "button", "data-action": "open", onclick: () => openDetail(job.id), title: job.id }, job.id.slice(0, 12))),
    element("td", {}, element("span", { class: "badge type" }, job.type)),
    element("td", {}, job.project_id),
    element("td", {}, statusBadges(job)),
    element("td", {}, progressCell(job)),
    element("td", {}, formatTime(job.created_at)),
    element("td", { class: "duration" }, formatDuration(durationSeconds(job))),
    element("td", {}, actionsCell(job)),
  );
}

/** Re-rendering a row must not take the keyboard focus away from the button on it. */
function keepingFocus(render) {
  const focused = document.activeElement;
  const jobId = focused?.closest("tr[data-job-id]")?.dataset.jobId;
  const action = focused?.dataset.action;
  render();
  if (!jobId || !action || document.contains(focused)) return;
  const row = document.querySelector(`tr[data-job-id="${CSS.escape(jobId)}"]`);
  const same = row?.querySelector(`[data-action="${action}"]`);
  // The action may be gone or disabled (Cancel became "Cancelling…"): stay on the row.
  (same && !same.disabled ? same : row?.querySelector('[data-action="open"]'))?.focus();
}

function renderTable() {
  const body = $("#jobs tbody");
  keepingFocus(() => body.replaceChildren(...state.jobs.map(jobRow)));
  $("#empty").hidden = state.jobs.length > 0;
  $("#prev").disabled = state.cursors.length <= 1;
  $("#next").disabled = !state.nextCursor && !state.nextIsStale;
  $("#page-info").textContent = `Page ${state.cursors.length}`;
}

function tickDurations() {
  for (const job of state.jobs) {
    if (job.status !== "running") continue;
    const cell = $(`tr[data-job-id="${CSS.escape(job.id)}"] .duration`);
    if (cell) cell.textContent = formatDuration(durationSeconds(job));
  }
}

function renderChart() {
  const svg = $("#chart");
  const { buckets } = state.chart;
  const peak = Math.max(1, ...buckets.map((b) => b.completed + b.failed));
  const width = 600 / buckets.length;
  const bars = [];
  buckets.forEach((bucket, index) => {
    const x = index * width + width * 0.1;
    const completed = (bucket.completed / peak) * 110;
    const failed = (bucket.failed / peak) * 110;
    bars.push(`<rect class="completed" x="${x}" y="${120 - completed}" width="${width * 0.8}" height="${completed}"></rect>`);
    bars.push(`<rect class="failed" x="${x}" y="${120 - completed - failed}" width="${width * 0.8}" height="${failed}"></rect>`);
  });
  svg.innerHTML = bars.join("");
  const completed = buckets.reduce((sum, b) => sum + b.completed, 0);
  const failed = buckets.reduce((sum, b) => sum + b.failed, 0);
  const span = $("#chart-window").value === "hour" ? "last hour" : "last day";
  svg.setAttribute("aria-label", `${completed} completed and ${failed} failed in the ${span}`);
  $("#chart-title").textContent = `Finished jobs: ${completed} completed, ${failed} failed in the ${span}`;
}

function isFinished(job) {
  return job.status === "completed" || job.status === "failed";
}

function countInChart(job) {
  if (!state.chart || !isFinished(job) || state.counted.has(job.id) || !job.completed_at) return;
  if (state.filters.project_id && job.project_id !== state.filters.project_id) return;
  state.counted.add(job.id);
  const size = state.chart.bucket_seconds * 1000;
  const at = new Date(job.completed_at).getTime();
  const last = state.chart.buckets[state.chart.buckets.length - 1];
  if (at >= new Date(last.start).getTime() + size) {
    loadChart(); // a new bucket began: take the server's view
    return;
  }
  const bucket = state.chart.buckets.find((b) => at >= new Date(b.start).getTime() && at < new Date(b.start).getTime() + size);
  if (!bucket) return;
  bucket[job.status] += 1;
  renderChart();
}

// ---- detail ----

function facts(entries) {
  const list = element("dl", { class: "facts" });
  for (const [label, value] of entries) list.append(element("dt", {}, label), element("dd", {}, value));
  return list;
}

function json(value) {
  return element("pre", {}, JSON.stringify(value, null, 2));
}

function timeline(job) {
  const items = [element("li", {}, `Created ${formatTime(job.created_at)}`)];
  for (const attempt of job.attempts) {
    const what = `Attempt ${attempt.attempt}: ${attempt.status}`;
    const when = [attempt.started_at && `started ${formatTime(attempt.started_at)}`, attempt.completed_at && `ended ${formatTime(attempt.completed_at)}`].filter(Boolean).join(", ");
    const why = attempt.error ? ` — ${attempt.error.type}: ${attempt.error.message}` : "";
    items.push(element("li", {}, `${what}${when ? ` (${when})` : ""}${why}`));
  }
  return element("ol", { class: "timeline" }, ...items);
}

function renderDetail(job) {
  $("#detail-title").textContent = `${job.type} job ${job.id}`;
  const parts = [
    facts([
      ["Status", statusBadges(job)],
      ...(verdictBadge(job) ? [["Verdict", verdictBadge(job)]] : []),
      ["Project", job.project_id],
      ["Progress", progressCell(job)],
      ["Message", job.progress.message || "–"],
      ["Attempt", String(job.attempt)],
      ["Schedule", job.schedule_id ? element("a", { href: `/schedules?project_id=${encodeURIComponent(job.project_id)}` }, job.schedule_id) : "–"],
      ["Duration", formatDuration(durationSeconds(job))],
      ["Temporal", element("a", { href: job.workflow_url, target: "_blank", rel: "noopener" }, "Open the workflow in the Temporal Web UI")],
    ]),
  ];
  if (job.error) {
    parts.push(
      element("h3", {}, "Error"),
      element("div", { class: "error-box", role: "note" }, element("strong", {}, job.error.type), `: ${job.error.message}`),
    );
    if (job.error.details !== null && job.error.details !== undefined) parts.push(json(job.error.details));
  }
  parts.push(element("h3", {}, "Timeline"), timeline(job));
  parts.push(element("h3", {}, "Who did what"), element("ol", { id: "actions", class: "timeline" }, element("li", {}, "–")));
  parts.push(element("h3", {}, "Parameters"), json(job.params));
  if (job.result) parts.push(element("h3", {}, "Result"), json(job.result));
  parts.push(element("h3", {}, "Artifacts"), element("ul", { id: "artifacts" }, element("li", {}, "–")));
  const download = element("a", { href: `/api/jobs/${encodeURIComponent(job.id)}/logs?format=text`, download: `job-${job.id}.log` }, "Download");
  parts.push(element("h3", {}, "Log ", download), element("pre", { id: "job-log", class: "job-log" }));
  parts.push(element("div", { class: "actions" }, actionsCell(job)));
  $("#detail-body").replaceChildren(...parts);
  if (state.log.jobId !== job.id) state.log = { jobId: job.id, lines: [], dropped: 0 };
  showLog();
  loadLog(job.id);
  loadArtifacts(job.id);
  showActions(job);
}

/** Who did what is read again only when the job's state moved, not with every progress
 * report: each read asks Temporal for the job's histories. */
function showActions(job) {
  const key = [job.id, job.status, job.attempt, job.cancel_requested, job.paused].join(" ");
  if (state.actions && state.actions.key === key) {
    $("#actions").replaceChildren(...state.actions.items.map((item) => item.cloneNode(true)));
    return;
  }
  loadActions(job.id, key);
}

const ACTION_WORDS = {
  "job.submit": "Submitted",
  "job.cancel": "Cancel requested",
  "job.retry": "Retried",
  "job.delete": "Deleted",
  "job.pause": "Paused",
  "job.resume": "Resumed",
  "bulk.start": "Bulk action started",
  "doctor.repair": "Repaired by the doctor",
  "temporal.start": "Started in Temporal",
  "temporal.cancel": "Cancel requested in Temporal",
  "temporal.terminate": "Terminated in Temporal",
  "temporal.signal": "Signalled in Temporal",
  "temporal.reset": "Reset in Temporal",
};

function actionLine(entry) {
  const what = ACTION_WORDS[entry.action] || entry.action;
  const signal = entry.details && entry.details.signal ? ` (${entry.details.signal})` : "";
  const who = `${entry.actor.label} via ${entry.actor.channel}`;
  const why = entry.reason ? ` — “${entry.reason}”` : "";
  return `${formatTime(entry.at)} ${what}${signal} by ${who}${why}`;
}

async function loadActions(jobId, key) {
  try {
    const shown = await api(`/api/jobs/${encodeURIComponent(jobId)}/timeline`);
    const items = shown.entries.map((entry) => element("li", { "data-action": entry.action }, actionLine(entry)));
    if (!shown.temporal_read) items.push(element("li", {}, "Temporal could not be asked for what was done there."));
    if (!items.length) items.push(element("li", {}, "None"));
    const list = $("#actions");
    if (!list || state.openJob !== jobId) return;
    state.actions = { key, items };
    list.replaceChildren(...items.map((item) => item.cloneNode(true)));
  } catch (error) {
    /* the detail stays useful without them */
  }
}

/** The reason a person gives for an action, asked with the question itself; null if they
 * changed their mind. */
function askReason(question) {
  const answer = window.prompt(`${question}\nWhy? (optional, kept in the audit trail)`, "");
  if (answer === null) return null;
  return answer.trim() ? { reason: answer.trim() } : {};
}

async function loadArtifacts(jobId) {
  try {
    const artifacts = await api(`/api/jobs/${encodeURIComponent(jobId)}/artifacts`);
    const items = artifacts.map((a) =>
      element("li", {}, element("a", { href: a.url, download: a.name }, a.name), ` (${a.bytes} bytes)`),
    );
    const list = $("#artifacts");
    if (list && state.openJob === jobId) list.replaceChildren(...(items.length ? items : [element("li", {}, "None")]));
  } catch (error) {
    /* the detail stays useful without its artifacts */
  }
}

function logText(line) {
  return `${formatTime(line.at)} ${line.level} attempt ${line.attempt}: ${line.message}`;
}

function showLog() {
  const pre = $("#job-log");
  if (!pre) return;
  const { lines, dropped } = state.log;
  const head = dropped ? [`… ${dropped} earlier lines were not kept`] : [];
  pre.textContent = lines.length ? [...head, ...lines.map(logText)].join("\n") : "No lines logged.";
  pre.scrollTop = pre.scrollHeight;
}

/** The lines after the last shown: called on every live change of the open job, so lines
 * appear while it runs without a stream of their own. */
async function loadLog(jobId) {
  try {
    for (;;) {
      const after = state.log.lines.length ? state.log.lines[state.log.lines.length - 1].seq : 0;
      const page = await api(`/api/jobs/${encodeURIComponent(jobId)}/logs?after=${after}&limit=1000`);
      if (state.log.jobId !== jobId) return;
      const known = new Set(state.log.lines.map((line) => line.seq));
      state.log.lines.push(...page.lines.filter((line) => !known.has(line.seq)));
      state.log.lines = state.log.lines.slice(-2000); // the page keeps what a reader can scroll
      state.log.dropped = page.dropped;
      showLog();
      if (page.next_after === null) return;
    }
  } catch (error) {
    /* the detail stays useful without its log */
  }
}

async function openDetail(jobId) {
  try {
    const job = await api(`/api/jobs/${encodeURIComponent(jobId)}`);
    state.openJob = jobId;
    writeUrl();
    renderDetail(job);
    const dialog = $("#detail");
    if (!dialog.open) dialog.showModal();
  } catch (error) {
    notify(`Could not open job ${jobId}: ${error.message}`, true);
  }
}

function closeDetail() {
  state.openJob = null;
  writeUrl();
  if ($("#detail").open) $("#detail").close();
}

// ---- actions ----

function notify(message, isError = false) {
  const toast = element("div", { class: `toast${isError ? " error" : ""}`, role: isError ? "alert" : "status" }, message);
  $("#toasts").append(toast);
  setTimeout(() => toast.remove(), 6000);
}

// ---- bulk actions: everything the filters match, after a preview ----

function bulkFilter() {
  const f = state.filters;
  const filter = {};
  if (f.status) filter.status = [f.status];
  if (f.type) filter.type = [f.type];
  if (f.error_type) filter.error_type = [f.error_type];
  if (f.paused) filter.paused = f.paused === "true";
  if (f.project_id) filter.project_id = f.project_id;
  if (f.q) filter.q = f.q;
  if (f.created_from) filter.created_from = toIso(f.created_from);
  if (f.created_to) filter.created_to = toIso(f.created_to);
  const params = {};
  for (const [name, value] of paramFilters(f.params)) params[name] = [...(params[name] || []), value];
  if (Object.keys(params).length) filter.params = params;
  return filter;
}

async function bulkAction() {
  const action = $("#bulk-action").value;
  const body = { action, filter: bulkFilter() };
  try {
    const preview = await post("/api/jobs/bulk/preview", body);
    if (!preview.would_change) {
      notify(`None of the ${preview.matched} matching jobs can be ${BULK_DONE[action]}.`);
      return;
    }
    const sample = preview.sample.map((job) => `${job.type} ${job.id.slice(0, 12)}`).join(", ");
    const question = `${BULK_VERB[action]} all ${preview.would_change.toLocaleString()} of the ` +
      `${preview.matched.toLocaleString()} matching jobs? For example: ${sample}.`;
    const why = askReason(question);
    if (why === null) return;
    const job = await post("/api/jobs/bulk", { ...body, ...why });
    notify(`${BULK_VERB[action]}: bulk job ${job.id.slice(0, 12)} started.`);
    onJob(job);
  } catch (error) {
    notify(`Could not ${action}: ${error.message}`, true);
  }
}

const BULK_VERB = { cancel: "Cancel", retry: "Retry", delete: "Delete", pause: "Pause", resume: "Resume" };
const BULK_DONE = { cancel: "cancelled", retry: "retried", delete: "deleted", pause: "paused", resume: "resumed" };

async function pauseOrResume(job, action) {
  const why = askReason(`${action === "pause" ? "Pause" : "Resume"} ${job.type} job ${job.id}?`);
  if (why === null) return;
  try {
    onJob(await post(`/api/jobs/${encodeURIComponent(job.id)}/${action}`, why));
    notify(action === "pause" ? `Pausing job ${job.id.slice(0, 12)} at its next checkpoint…` : `Job ${job.id.slice(0, 12)} goes on.`);
  } catch (error) {
    notify(`Could not ${action}: ${error.message}`, true);
  }
}

async function cancelJob(job) {
  const why = askReason(`Cancel ${job.type} job ${job.id}?`);
  if (why === null) return;
  try {
    onJob(await post(`/api/jobs/${encodeURIComponent(job.id)}/cancel`, why));
    notify(`Cancelling job ${job.id.slice(0, 12)}…`);
  } catch (error) {
    notify(`Could not cancel: ${error.message}`, true);
  }
}

async function retryJob(job) {
  const why = askReason(`Retry ${job.type} job ${job.id}?`);
  if (why === null) return;
  try {
    onJob(await post(`/api/jobs/${encodeURIComponent(job.id)}/retry`, why));
    notify(`Job ${job.id.slice(0, 12)} queued again.`);
  } catch (error) {
    notify(`Could not retry: ${error.message}`, true);
  }
}

// ---- submit form, built from each job type's parameter schema ----

const jobTypes = JSON.parse($("#job-types").textContent);

function paramField(name, schema, required) {
  const choices = schema.enum || (schema.anyOf || []).map((s) => s.enum).find(Boolean);
  if (choices) {
    const select = element("select", { name, "data-kind": "string" });
    if (!required) select.append(element("option", { value: "" }, "(default)"));
    for (const choice of choices) select.append(element("option", { value: String(choice) }, String(choice)));
    if (schema.default !== undefined && schema.default !== null) select.value = String(schema.default);
    return element("label", { title: schema.description || "" }, schema.title || name, select);
  }
  const type = schema.type || (schema.anyOf || []).map((s) => s.type).find((t) => t !== "null") || "string";
  const attributes = { name, "data-kind": type };
  if (type === "integer" || type === "number") {
    attributes.type = "number";
    if (schema.minimum !== undefined) attributes.min = String(schema.minimum);
    if (schema.maximum !== undefined) attributes.max = String(schema.maximum);
    if (type === "integer") attributes.step = "1";
  } else {
    attributes.type = "text";
  }
  if (required) attributes.required = "";
  const input = element("input", attributes);
  if (schema.default !== undefined && schema.default !== null) input.value = String(schema.default);
  const label = element("label", { title: schema.description || "" }, schema.title || name, input);
  if (!schema["x-upload"]) return label;
  // A parameter that names a file can take one uploaded from this computer instead.
  const file = element("input", { type: "file", "data-upload-for": name });
  file.addEventListener("change", () => { input.required = required && !file.files.length; });
  return element("div", { class: "upload" }, label, element("label", {}, "or upload a file", file));
}

function renderParamFields() {
  const spec = jobTypes.find((t) => t.name === $("#submit-type").value);
  const fieldset = $("#params");
  const required = new Set(spec.schema.required || []);
  const fields = Object.entries(spec.schema.properties || {}).map(([name, schema]) => paramField(name, schema, required.has(name)));
  fieldset.replaceChildren(element("legend", {}, "Parameters"), ...fields);
  $("#submit-description").textContent = spec.description;
}

async function submitJob(event) {
  event.preventDefault();
  const form = event.target;
  const params = {};
  for (const input of $("#params").querySelectorAll("input:not([type=file]), select")) {
    if (input.value === "") continue;
    params[input.name] = input.dataset.kind === "integer" || input.dataset.kind === "number" ? Number(input.value) : input.value;
  }
  const payload = { type: form.elements.type.value, project_id: form.elements.project_id.value, params };
  try {
    for (const file of $("#params").querySelectorAll("input[type=file]")) {
      if (!file.files.length) continue;
      const body = new FormData();
      body.append("file", file.files[0]);
      const upload = await api(`/api/projects/${encodeURIComponent(payload.project_id)}/uploads`, { method: "POST", body });
      params[file.dataset.uploadFor] = upload.source;
    }
    const job = await post("/api/jobs", payload);
    onJob(job);
    notify(`Submitted ${job.type} job ${job.id.slice(0, 12)}.`);
  } catch (error) {
    notify(`Could not submit: ${error.message}`, true);
  }
}

// ---- live updates ----

function onJob(job) {
  const index = state.jobs.findIndex((j) => j.id === job.id);
  if (index >= 0) {
    if (new Date(job.updated_at) < new Date(state.jobs[index].updated_at)) return;
    state.jobs[index] = job;
    const row = $(`tr[data-job-id="${CSS.escape(job.id)}"]`);
    if (row) keepingFocus(() => row.replaceWith(jobRow(job)));
  } else if (state.cursors.length === 1 && matchesFilters(job)) {
    state.jobs.unshift(job);
    if (state.jobs.length > PAGE_SIZE) {
      state.jobs.pop();
      state.nextIsStale = true; // the server's cursor no longer follows the last row shown
    }
    renderTable();
  }
  if (state.openJob === job.id && $("#detail").open) renderDetail(job);
  countInChart(job);
}

function onStats(stats) {
  if ((state.filters.project_id || null) === stats.project_id) renderStats(stats);
}

function setReachable(reachable) {
  $("#offline").hidden = reachable;
}

function setLive(live) {
  const badge = $("#live");
  badge.textContent = live ? "Live" : "Reconnecting…";
  badge.className = `live ${live ? "on" : "off"}`;
}

function connect() {
  const source = new EventSource("/api/jobs/events");
  let wasDown = false;
  source.addEventListener("open", () => {
    setLive(true);
    setReachable(true);
    if (wasDown) reloadAll(); // changes made while we were away
    wasDown = false;
  });
  source.addEventListener("error", () => {
    wasDown = true;
    setLive(false);
    setReachable(false);
    if (source.readyState === EventSource.CLOSED) {
      setTimeout(connect, 2000); // the browser gave up (e.g. a proxy error): start over
    }
  });
  source.addEventListener("jobs", (event) => JSON.parse(event.data).jobs.forEach(onJob));
  source.addEventListener("stats", (event) => onStats(JSON.parse(event.data)));
}

// ---- wiring ----

function onFiltersChanged() {
  const form = $("#filters");
  state.filters = {};
  for (const name of FILTERS) {
    const value = form.elements[name].value.trim();
    if (value) state.filters[name] = value;
  }
  state.cursors = [null];
  writeUrl();
  reloadAll();
}

function debounce(fn, ms) {
  let timer;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}

function start() {
  readUrl();
  const filters = $("#filters");
  filters.addEventListener("change", onFiltersChanged);
  filters.addEventListener("input", debounce(onFiltersChanged, 300));
  filters.addEventListener("reset", () => setTimeout(onFiltersChanged, 0));
  filters.addEventListener("submit", (event) => event.preventDefault());
  $("#next").addEventListener("click", async () => {
    if (state.nextIsStale) await loadJobs();
    if (!state.nextCursor) return;
    state.cursors.push(state.nextCursor);
    loadJobs();
  });
  $("#prev").addEventListener("click", () => {
    state.cursors.pop();
    loadJobs();
  });
  $("#bulk-apply").addEventListener("click", bulkAction);
  $("#bulk-action").addEventListener("change", (event) => event.stopPropagation()); // not a filter
  $("#chart-window").addEventListener("change", loadChart);
  $("#webhooks-refresh").addEventListener("click", loadWebhooks);
  $("#submit-type").addEventListener("change", renderParamFields);
  $("#submit").addEventListener("submit", submitJob);
  $("#detail-close").addEventListener("click", closeDetail);
  $("#sign-out")?.addEventListener("click", signOut);
  $("#detail").addEventListener("close", () => {
    state.openJob = null;
    writeUrl();
  });
  renderParamFields();
  reloadAll();
  if (state.openJob) openDetail(state.openJob);
  connect();
  setInterval(tickDurations, 1000);
  setInterval(loadChart, 60_000);
}

start();
