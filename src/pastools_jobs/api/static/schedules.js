// A project's schedules: the REST API under /api/projects/{id}/schedules, nothing more.
"use strict";

const $ = (selector, root = document) => root.querySelector(selector);
const CSRF = document.querySelector('meta[name="csrf"]');
// Schedules this page added: Temporal's list may take a moment to show them.
const added = new Map();
const REFRESH_MILLISECONDS = 5000;

// The sign-in cookie authenticates; changes also carry the session's CSRF token.
async function api(path, options = {}) {
  const headers = { ...(options.headers || {}) };
  if (options.method && options.method !== "GET" && CSRF.content) headers[CSRF.dataset.header] = CSRF.content;
  const response = await fetch(path, { credentials: "same-origin", ...options, headers });
  if (response.status === 401) location.assign("/login");
  const body = response.status === 204 ? {} : await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(problemText(body, response.status));
  return body;
}

function problemText(problem, status) {
  const fields = (problem.errors || []).map((e) => `${e.field}: ${e.message}`).join("; ");
  return [problem.detail || `HTTP ${status}`, fields].filter(Boolean).join(" ");
}

function send(path, method, payload) {
  const options = { method };
  if (payload !== undefined) {
    options.headers = { "Content-Type": "application/json" };
    options.body = JSON.stringify(payload);
  }
  return api(path, options);
}

function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (name === "class") node.className = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value);
  }
  for (const child of children) if (child !== null && child !== undefined) node.append(child);
  return node;
}

function notify(message, isError = false) {
  const toast = element("div", { class: `toast${isError ? " error" : ""}`, role: isError ? "alert" : "status" }, message);
  $("#toasts").append(toast);
  setTimeout(() => toast.remove(), 6000);
}

function project() {
  return new URLSearchParams(location.search).get("project_id") || "";
}

function schedulesPath(id) {
  const base = `/api/projects/${encodeURIComponent(project())}/schedules`;
  return id ? `${base}/${encodeURIComponent(id)}` : base;
}

function when(schedule) {
  const zone = schedule.time_zone ? ` (${schedule.time_zone})` : "";
  if (schedule.cron) return `cron ${schedule.cron.join(" | ")}${zone}`;
  return `every ${schedule.interval_seconds} s${zone}`;
}

function runLink(run) {
  const href = `/?project_id=${encodeURIComponent(project())}&job=${encodeURIComponent(run.job_id)}`;
  return element("li", {}, element("a", { href }, run.job_id), ` ${run.status || "starting"}`);
}

function scheduleRow(schedule) {
  const act = (action, done, payload) => async () => {
    try {
      const changed = await send(`${schedulesPath(schedule.id)}/${action}`, "POST", payload);
      if (added.has(schedule.id)) added.set(schedule.id, changed);
      notify(done);
    } catch (error) {
      notify(`Could not ${action} ${schedule.id}: ${error.message}`, true);
    }
    load();
  };
  const remove = async () => {
    if (!confirm(`Delete the schedule ${schedule.id}? Its jobs stay.`)) return;
    try {
      await send(schedulesPath(schedule.id), "DELETE");
      added.delete(schedule.id);
      notify("Schedule deleted");
    } catch (error) {
      notify(`Could not delete ${schedule.id}: ${error.message}`, true);
    }
    load();
  };
  const pause = () => act("pause", "Paused", { note: prompt("Why pause it? (optional)") || null })();
  const state = schedule.paused ? `paused${schedule.note ? `: ${schedule.note}` : ""}` : "active";
  const next = schedule.paused || !schedule.next_run_times.length ? "–" : new Date(schedule.next_run_times[0]).toLocaleString();
  const button = (label, onclick) => element("button", { type: "button", class: "secondary", onclick }, label);
  return element(
    "tr",
    { "data-schedule-id": schedule.id },
    element("td", {}, element("a", { href: schedule.schedule_url, target: "_blank", rel: "noopener" }, schedule.id)),
    element("td", {}, schedule.type),
    element("td", {}, when(schedule)),
    element("td", {}, schedule.overlap),
    element("td", { class: "schedule-state" }, state),
    element("td", {}, next),
    element("td", {}, element("ul", { class: "runs" }, ...schedule.recent_runs.slice(0, 3).map(runLink))),
    element(
      "td",
      {},
      schedule.paused ? button("Unpause", act("unpause", "Unpaused")) : button("Pause", pause),
      " ",
      button("Run now", act("trigger", "Triggered")),
      " ",
      button("Delete", remove),
    ),
  );
}

async function load() {
  if (!project()) return;
  try {
    const schedules = await api(schedulesPath());
    for (const [id, schedule] of added) {
      if (schedules.some((listed) => listed.id === id)) added.delete(id);
      else if (schedule.project_id === project()) schedules.push(schedule);
    }
    $("#schedule-list tbody").replaceChildren(...schedules.map(scheduleRow));
    $("#schedules-empty").hidden = schedules.length > 0;
    $("#schedules-title").textContent = `Schedules of ${project()}`;
  } catch (error) {
    notify(`Could not load the schedules: ${error.message}`, true);
  }
}

function formBody(form) {
  const value = (name) => form.elements[name].value.trim();
  const body = {
    id: value("id"),
    type: value("type"),
    params: JSON.parse(value("params") || "{}"),
    overlap: value("overlap"),
    catchup_window_seconds: Number(value("catchup_window_seconds")),
    paused: form.elements.paused.checked,
  };
  const cron = value("cron").split("\n").map((line) => line.trim()).filter(Boolean);
  if (cron.length) body.cron = cron;
  if (value("interval_seconds")) body.interval_seconds = Number(value("interval_seconds"));
  if (value("time_zone")) body.time_zone = value("time_zone");
  if (value("note")) body.note = value("note");
  return body;
}

async function create(event) {
  event.preventDefault();
  let body;
  try {
    body = formBody(event.target);
  } catch (error) {
    notify("The parameters are not valid JSON.", true);
    return;
  }
  try {
    added.set(body.id, await send(schedulesPath(), "POST", body));
    notify(`Schedule ${body.id} added`);
    event.target.elements.id.value = "";
  } catch (error) {
    notify(`Could not add the schedule: ${error.message}`, true);
  }
  load();
}

function start() {
  $("#project").elements.project_id.value = project();
  $("#project").addEventListener("submit", (event) => {
    event.preventDefault();
    const params = new URLSearchParams({ project_id: event.target.elements.project_id.value.trim() });
    history.replaceState(null, "", `?${params}`);
    load();
  });
  $("#schedules-refresh").addEventListener("click", load);
  $("#create").addEventListener("submit", create);
  load();
  // Runs start and end by themselves: keep the list current while the page is in view.
  setInterval(() => {
    if (!document.hidden) load();
  }, REFRESH_MILLISECONDS);
}

start();
