// The automation dashboard: one page, no dependencies. It reads the state the daemon pushes over
// the live WebSocket (GET /api/v1/live) and calls the HTTP API with the user's token for actions;
// the server checks every role, the page only hides what a role cannot do.
"use strict";

const RANK = { viewer: 1, operator: 2, admin: 3 };
let token = sessionStorage.getItem("automation.token") || "";
let role = "";
let socket = null;
let retry = 1000;
let lastSnapshot = null;

const $ = (id) => document.getElementById(id);

// Elements from data, never from HTML strings.
function h(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(e.dataset, v);
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined && c !== false) e.append(c instanceof Node ? c : String(c));
  return e;
}
const badge = (text) => h("span", { class: "badge" }, text);
const empty = (text) => h("p", { class: "muted" }, text);

function ago(iso) {
  if (!iso) return "";
  const s = Math.round((Date.now() - Date.parse(iso)) / 1000);
  if (s < 0) return "in " + span(-s);
  return span(s) + " ago";
}
function span(s) {
  if (s < 90) return s + "s";
  if (s < 5400) return Math.round(s / 60) + "m";
  if (s < 129600) return Math.round(s / 3600) + "h";
  return Math.round(s / 86400) + "d";
}

function toast(text, error) {
  const t = $("toast");
  t.textContent = text;
  t.className = error ? "error" : "";
  t.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => (t.hidden = true), 5000);
}

async function api(method, path, body) {
  const res = await fetch(path, {
    method,
    headers: { Authorization: "Bearer " + token, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  let doc = null;
  try {
    doc = await res.json();
  } catch (_) {}
  if (!res.ok) {
    const message = doc && doc.error ? doc.error.message : res.status + " " + res.statusText;
    const e = new Error(message);
    e.status = res.status;
    throw e;
  }
  return doc;
}

// An operator action: the button waits for the answer, and the answer (or its error) is told.
async function act(button, method, path, body, done) {
  button.disabled = true;
  try {
    const doc = await api(method, path, body);
    toast(done(doc));
  } catch (e) {
    toast(e.message, true);
  } finally {
    button.disabled = false;
  }
}

// ---- panels -----------------------------------------------------------------------------------

// A panel's data that is not a list is the error its route answered.
function failed(value) {
  if (Array.isArray(value)) return null;
  return empty("could not be read: " + ((value && (value.message || value.error)) || "no answer"));
}

function renderComponents(status) {
  const box = $("components");
  box.replaceChildren();
  if (!status || !status.components) return box.append(empty("no status"));
  for (const [name, c] of Object.entries(status.components))
    box.append(h("div", { class: "row", dataset: { component: name, state: c.state } }, h("span", { class: "name" }, name), badge(c.state),
      c.stopped || c.error ? h("span", { class: "detail" }, c.stopped || c.error) : null));
  for (const s of status.services || [])
    box.append(h("div", { class: "row", dataset: { service: s.name, state: s.state } }, h("span", { class: "name" }, s.name), badge(s.state),
      h("span", { class: "muted" }, "supervised, pid " + s.pid + ", " + s.starts + " starts"), s.last_exit ? h("span", { class: "detail" }, "last exit: " + s.last_exit) : null));
}

function renderRuns(runs, workflows) {
  const box = $("runs");
  box.replaceChildren();
  const select = $("run-workflow");
  const names = (workflows || []).join("\n");
  if (select.dataset.names !== names) {
    const keep = select.value;
    select.replaceChildren(...(workflows || []).map((w) => h("option", { value: w }, w)));
    if (workflows.includes(keep)) select.value = keep;
    select.dataset.names = names;
  }
  if (failed(runs)) return box.append(failed(runs));
  if (!runs.length) return box.append(empty("no runs yet"));
  for (const r of runs) {
    const when = r.ended_at || r.started_at || r.queued_at;
    box.append(h("div", { class: "row", dataset: { run: r.id, state: r.state } },
      h("span", { class: "name" }, "#" + r.id + " " + r.workflow), badge(r.state), h("span", { class: "muted" }, r.trigger + ", " + ago(when)),
      r.reason && r.state !== "succeeded" ? h("span", { class: "detail" }, r.reason) : null,
      h("div", { class: "steps" }, (r.steps || []).map((s) => h("span", { class: "step", dataset: { step: s.step, state: s.state }, title: s.reason || s.state }, s.step)))));
  }
}

function renderBreakers(breakers) {
  const box = $("breakers");
  box.replaceChildren();
  if (failed(breakers)) return box.append(failed(breakers));
  if (!breakers.length) return box.append(empty("no breakers are stored"));
  for (const b of breakers) {
    const reset = h("button", { type: "button", class: "reset operator", disabled: b.state === "closed" }, "Reset");
    reset.addEventListener("click", () =>
      act(reset, "POST", "/api/v1/circuit-breakers/" + encodeURIComponent(b.name) + "/reset", { reason: "reset from the dashboard" },
        (d) => b.name + ": " + d.from + " -> " + d.to));
    box.append(h("div", { class: "row", dataset: { breaker: b.name, state: b.state } }, h("span", { class: "name" }, b.name), badge(b.state), reset,
      b.reason ? h("span", { class: "detail" }, b.reason) : null));
  }
}

function renderHealth(health) {
  const box = $("health");
  box.replaceChildren();
  if (failed(health)) return box.append(failed(health));
  const items = Array.isArray(health) ? health : [];
  if (!items.length) return box.append(empty("no health targets"));
  for (const t of items)
    box.append(h("div", { class: "row", dataset: { target: t.target, state: t.state } }, h("span", { class: "name" }, t.target), badge(t.state),
      h("span", { class: "muted" }, ago(t.since)), t.reason ? h("span", { class: "detail" }, t.reason) : null));
}

function renderScaling(resources, history) {
  const box = $("scaling");
  box.replaceChildren();
  // Each resource's newest decision: the size it decided, and when.
  for (const r of Array.isArray(resources) ? resources : [])
    box.append(h("div", { class: "row", dataset: { resource: r.resource } }, h("span", { class: "name" }, r.resource),
      h("span", { class: "muted" }, "size " + r.desired + " (decided " + ago(r.time) + ")")));
  if (failed(history)) return box.append(failed(history));
  if (!history.length && !box.childElementCount) return box.append(empty("no scaled resources (scaling.json)"));
  for (const d of history)
    box.append(h("div", { class: "row", dataset: { decision: d.id, state: d.outcome } }, h("span", { class: "name" }, d.resource),
      h("span", {}, d.current + " -> " + d.desired), badge(d.outcome), h("span", { class: "muted" }, d.reason + ", " + ago(d.time)),
      d.message ? h("span", { class: "detail" }, d.message) : null));
}

function renderAlerts(alerts) {
  const box = $("alerts");
  box.replaceChildren();
  if (failed(alerts)) return box.append(failed(alerts));
  if (!alerts.length) return box.append(empty("no alerts"));
  for (const a of alerts)
    box.append(h("div", { class: "row", dataset: { alert: a.id, state: a.state } }, h("span", { class: "name" }, a.rule), badge(a.state),
      h("span", { class: "muted" }, a.severity + ", " + ago(a.fired)), h("span", { class: "detail" }, a.summary)));
}

function renderSchedules(schedules) {
  const box = $("schedules");
  box.replaceChildren();
  if (failed(schedules)) return box.append(failed(schedules));
  for (const s of schedules) {
    const paused = s.state === "paused";
    const toggle = h("button", { type: "button", class: "operator " + (paused ? "resume" : "pause") }, paused ? "Resume" : "Pause");
    toggle.addEventListener("click", () =>
      act(toggle, "POST", "/api/v1/schedules/" + encodeURIComponent(s.name) + (paused ? "/resume" : "/pause"), { reason: (paused ? "resumed" : "paused") + " from the dashboard" },
        () => s.name + (paused ? " resumed" : " paused")));
    box.append(h("div", { class: "row", dataset: { schedule: s.name, state: s.state } }, h("span", { class: "name" }, s.name), badge(s.state), toggle,
      h("span", { class: "detail" }, s.trigger_text + (s.next_fire ? ", next " + ago(s.next_fire) : "") + (paused && s.reason ? ": " + s.reason : ""))));
  }
}

function renderNodes(nodes, edges) {
  const box = $("nodes");
  box.replaceChildren();
  if (!nodes || !nodes.length) return box.append(empty("no nodes registered"));
  // The connections first: what each node (or service) needs, and the state of what it points at.
  if (edges && edges.length)
    box.append(h("div", { class: "edges" }, edges.map((e) =>
      h("span", { class: "edge", dataset: { from: e.from, to: e.to, state: e.resolved ? e.state : "missing" } }, e.from + " \u2192 " + e.to, " ",
        badge(e.resolved ? e.state : "not registered")))));
  for (const n of nodes)
    box.append(h("div", { class: "row", dataset: { node: n.id, state: n.state } }, h("span", { class: "name" }, n.id), badge(n.state),
      h("span", { class: "muted" }, n.kind + (n.address ? " at " + n.address : "") + ", seen " + ago(n.last_seen)),
      h("span", { class: "detail" }, (n.services || []).map((s) => s.name).join(", ") + (n.reason ? " (" + n.reason + ")" : ""))));
}

// ---- charts -----------------------------------------------------------------------------------

const SVG = "http://www.w3.org/2000/svg";
function s(tag, attrs) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  return e;
}

// Lines (and a band) over x in [x0, x1], y from 0 (or below) to the largest value.
function chart(series, band, labels, width) {
  const W = Math.max(240, Math.round(width || 600)), H = 180, L = 36, B = 20;  // drawn at its size: text is not stretched
  const xs = series.flatMap((x) => x.points.map((p) => p[0])).concat(band ? band.map((p) => p[0]) : []);
  const ys = series.flatMap((x) => x.points.map((p) => p[1])).concat(band ? band.flatMap((p) => [p[1], p[2]]) : []);
  const svg = s("svg", { class: "chart", viewBox: `0 0 ${W} ${H}`, role: "img" });
  if (!xs.length) return svg;
  const x0 = Math.min(...xs), x1 = Math.max(...xs) || x0 + 1;
  const y0 = Math.min(0, ...ys), y1 = Math.max(...ys) * 1.1 || 1;
  const X = (x) => L + ((x - x0) / (x1 - x0 || 1)) * (W - L - 4);
  const Y = (y) => H - B - ((y - y0) / (y1 - y0 || 1)) * (H - B - 6);
  svg.append(s("line", { class: "axis", x1: L, y1: H - B, x2: W, y2: H - B }), s("line", { class: "axis", x1: L, y1: 0, x2: L, y2: H - B }));
  for (const v of [y0, (y0 + y1) / 2, y1]) {
    const t = s("text", { x: 2, y: Y(v) + 4 });
    t.textContent = Math.abs(v) >= 1000 ? (v / 1000).toFixed(1) + "k" : v.toFixed(v < 10 ? 1 : 0);
    svg.append(t);
  }
  if (labels)
    for (const [x, text] of labels) {
      const t = s("text", { x: Math.min(X(x), W - 70), y: H - 4 });
      t.textContent = text;
      svg.append(t);
    }
  if (band && band.length) {
    const top = band.map((p) => `${X(p[0])},${Y(p[2])}`), bottom = band.slice().reverse().map((p) => `${X(p[0])},${Y(p[1])}`);
    svg.append(s("polygon", { class: "band", points: top.concat(bottom).join(" ") }));
  }
  for (const x of series)
    svg.append(s("polyline", { fill: "none", stroke: x.color, "stroke-width": 2, "vector-effect": "non-scaling-stroke", points: x.points.map((p) => `${X(p[0])},${Y(p[1])}`).join(" ") }));
  return svg;
}

function renderMetrics(metrics) {
  const box = $("metrics");
  box.replaceChildren();
  const cpu = (metrics && metrics.cpu_usage) || [], mem = (metrics && metrics.memory_usage) || [];
  if (!cpu.length && !mem.length) return box.append(empty("no samples in the last hour (the collector stores them every alerts.interval)"));
  const last = (p) => (p.length ? p[p.length - 1][1].toFixed(1) + " %" : "-");
  box.append(h("div", { class: "legend" }, h("span", { class: "blue" }, "cpu " + last(cpu)), h("span", { class: "orange" }, "memory " + last(mem))));
  const t = cpu.concat(mem).map((p) => p[0]);
  const label = (ms) => new Date(ms).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  box.append(chart([{ points: cpu, color: "#2f5fb3" }, { points: mem, color: "#b35900" }], null, [[Math.min(...t), label(Math.min(...t))], [Math.max(...t), label(Math.max(...t))]], box.clientWidth));
}

function renderForecast(f) {
  const box = $("forecast");
  box.replaceChildren();
  if (!f || !f.predictions || !f.predictions.length) return box.append(empty("no forecast yet (`autoctl forecast --metric revenue`, or the forecast-update schedule)"));
  const points = f.predictions.map((p, i) => [i, p.value]);
  // The widest interval the forecast has (its "confidence" level), as a band around the mean.
  const band = f.predictions.map((p, i) => [i, p.lower ?? p.value, p.upper ?? p.value]);
  const first = f.predictions[0], last = f.predictions[f.predictions.length - 1];
  box.append(h("div", { class: "legend", id: "forecast-legend", dataset: { forecast: f.id } }, h("span", { class: "blue" }, f.metric + ", " + f.method + " (" + f.backend + ")"),
    h("span", { class: "pale" }, (first.confidence ? first.confidence + " % " : "") + "interval"), h("span", { class: "muted" }, "made " + ago(f.created))));
  box.append(chart([{ points, color: "#2f5fb3" }], band, [[0, first.date || "step 1"], [points.length - 1, last.date || "step " + points.length]], box.clientWidth));
}

// ---- suggestions (REST: they need operator, and are recomputed at most every minute) ---------

async function loadSuggestions() {
  const box = $("suggestions");
  if (RANK[role] < RANK.operator) return box.replaceChildren(empty("Suggestions need an operator token."));
  try {
    const doc = await api("GET", "/api/v1/intelligence/suggestions");
    box.replaceChildren();
    if (!doc.suggestions.length) return box.append(empty("nothing in the history calls for a change"));
    for (const x of doc.suggestions) {
      const apply = h("button", { type: "button", class: "apply operator", disabled: !x.applicable, title: x.applicable ? "" : "advice: nothing to apply" }, x.applicable ? "Apply" : "Advice");
      apply.addEventListener("click", () =>
        act(apply, "POST", "/api/v1/intelligence/suggestions/" + encodeURIComponent(x.id) + "/apply", { reason: "applied from the dashboard" }, (d) => {
          setTimeout(loadSuggestions, 100);
          return d.summary;
        }));
      box.append(h("div", { class: "row", dataset: { suggestion: x.id, kind: x.kind } }, h("span", { class: "name" }, x.title), apply,
        h("span", { class: "detail" }, x.explanation)));
    }
  } catch (e) {
    box.replaceChildren(empty("could not be read: " + e.message));
  }
}

// ---- the live channel -------------------------------------------------------------------------

function render(snap) {
  lastSnapshot = snap;
  renderComponents(snap.status);
  renderRuns(snap.runs, snap.workflows);
  renderBreakers(snap.breakers);
  renderHealth(snap.health);
  renderScaling(snap.scaling, snap.scaling_history);
  renderAlerts(snap.alerts);
  renderSchedules(snap.schedules);
  renderNodes(snap.nodes, snap.edges);
  renderMetrics(snap.metrics);
  renderForecast(snap.forecast);
  $("updated").textContent = "as of " + new Date(snap.at).toLocaleTimeString();
  document.body.dataset.snapshotAt = snap.at;
}

function setConnection(state, text) {
  const c = $("connection");
  c.dataset.state = state;
  c.textContent = text || state;
}

function connect() {
  const url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/api/v1/live";
  const ws = new WebSocket(url, ["automation.v1", "bearer." + token]);
  socket = ws;
  ws.onopen = () => {
    if (socket !== ws) return;
    retry = 1000;
    setConnection("live");
  };
  ws.onmessage = (m) => {
    if (socket !== ws) return;  // an older connection's last words
    const doc = JSON.parse(m.data);
    if (doc.type === "snapshot") render(doc);
  };
  ws.onclose = () => {
    if (socket !== ws) return;
    socket = null;
    if (!token) return;
    setConnection("reconnecting", "reconnecting in " + Math.round(retry / 1000) + "s");
    setTimeout(start, retry);
    retry = Math.min(retry * 2, 15000);
  };
}

async function start() {
  if (!token || socket) return;  // signed out meanwhile, or already connected
  try {
    const me = await api("GET", "/api/v1/whoami");
    role = me.role;
  } catch (e) {
    if (e.status === 401) return signOut("The token was refused: " + e.message);
    setConnection("reconnecting", "daemon unreachable");
    setTimeout(start, retry);
    retry = Math.min(retry * 2, 15000);
    return;
  }
  $("who").textContent = role + " (" + token.split(".")[0] + ")";
  if (RANK[role] >= RANK.operator) document.body.dataset.operator = "";
  else delete document.body.dataset.operator;
  $("login").hidden = true;
  $("board").hidden = false;
  $("signout").hidden = false;
  connect();
  loadSuggestions();
}

function signOut(why) {
  token = "";
  role = "";
  lastSnapshot = null;
  sessionStorage.removeItem("automation.token");
  const ws = socket;
  socket = null;
  if (ws) ws.close();
  $("board").hidden = true;
  $("signout").hidden = true;
  $("login").hidden = false;
  $("login-error").textContent = why || "";
  setConnection("connecting", "signed out");
}

document.addEventListener("DOMContentLoaded", () => {
  // A token in the address (#token=...) is taken once and removed from it.
  const m = location.hash.match(/token=([^&]+)/);
  if (m) {
    token = decodeURIComponent(m[1]);
    sessionStorage.setItem("automation.token", token);
    history.replaceState(null, "", location.pathname);
  }
  $("login-form").addEventListener("submit", (e) => {
    e.preventDefault();
    token = $("token").value.trim();
    sessionStorage.setItem("automation.token", token);
    start();
  });
  $("signout").addEventListener("click", () => signOut());
  $("run-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const name = $("run-workflow").value;
    const button = e.submitter || $("run-form").querySelector("button");
    act(button, "POST", "/api/v1/workflows/" + encodeURIComponent(name) + "/runs", {}, (d) => "run #" + d.run.id + " of " + name + " " + d.run.state);
  });
  setInterval(() => lastSnapshot && loadSuggestions(), 60000);
  setInterval(() => lastSnapshot && render(lastSnapshot), 15000);  // "12s ago" keeps moving
  if (token) start();
  else signOut();
});
