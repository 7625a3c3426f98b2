// Driftlock web page. Plain JavaScript, no build step, no third-party code.
// Security notes: the API key is sent once to POST /v1/session and then
// forgotten; the session lives in an HttpOnly SameSite=Strict cookie that
// EventSource and fetch send automatically. Every text from the store is put
// in the DOM with textContent (never innerHTML), links only ever get http(s)
// URLs built by the server, and state changes carry the X-Driftlock-CSRF
// header the server requires for cookie sessions.
//
// Every time shown and filtered is observed time (the records' own clocks,
// UTC); ingestion time (detected_at) is shown beside it in the feeds.
"use strict";

const $ = (id) => document.getElementById(id);
const COLORS = ["#4fb3ff", "#ff6b6b", "#5fd38d", "#ffc24b", "#a28bff", "#ff9f5a", "#4fe0d0", "#d98bd9"];
const state = {
  es: null, lastEventId: "", shown: new Set(), cursor: null, selected: null, etag: null, role: "",
  view: "incidents",
  inc: { es: null, cursor: null, rows: new Map(), selected: null, etag: null, drill: null, drillCursor: null },
};

async function api(method, path, body, headers) {
  const opts = { method, headers: Object.assign({ "X-Driftlock-CSRF": "1" }, headers || {}), credentials: "same-origin" };
  if (body !== undefined) {
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  const res = await fetch(path, opts);
  let data = null;
  const ct = res.headers.get("Content-Type") || "";
  if (ct.includes("json")) data = await res.json();
  if (res.status === 401 && path !== "/v1/session") showLogin("Your session ended; sign in again.");
  return { status: res.status, data, headers: res.headers };
}

function problemText(r) {
  if (r.data && r.data.detail) return r.data.detail;
  return "request failed (" + r.status + ")";
}

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

function fmtTime(s) {
  const d = new Date(s);
  return d.toISOString().replace("T", " ").slice(0, 19);
}

function fmtNum(v, digits) {
  if (v === null || v === undefined) return "–";
  if (Math.abs(v) < 0.001 && v !== 0) return v.toExponential(1);
  return Number(v).toFixed(digits);
}

function fmtDuration(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 90) return s + " s";
  if (s < 5400) return Math.round(s / 60) + " min";
  if (s < 172800) return (s / 3600).toFixed(1) + " h";
  return (s / 86400).toFixed(1) + " d";
}

// safeLink returns an <a> for an http(s) URL (the server builds them from
// the configured template), else plain text.
function safeLink(url, text) {
  if (typeof url === "string" && /^https?:\/\//i.test(url)) {
    const a = el("a", text);
    a.href = url;
    a.target = "_blank";
    a.rel = "noopener noreferrer";
    return a;
  }
  return el("span", text);
}

// ---- login -------------------------------------------------------------

function showLogin(msg) {
  if (state.es) { state.es.close(); state.es = null; }
  if (state.inc.es) { state.inc.es.close(); state.inc.es = null; }
  $("app-view").hidden = true;
  $("login-view").hidden = false;
  $("login-error").textContent = msg || "";
  $("key").focus();
}

async function showApp(who) {
  $("login-view").hidden = true;
  $("app-view").hidden = false;
  state.role = who.role;
  $("whoami").textContent = who.name + " (" + who.role + ")";
  const canTriage = who.role === "analyst" || who.role === "admin";
  for (const b of document.querySelectorAll(".actions button")) b.disabled = !canTriage;
  await showView(state.view);
  // Notifications link to #/incidents/ID (internal/notify): open that one.
  const link = /^#\/incidents\/(\d+)$/.exec(location.hash);
  if (link && state.view === "incidents") await showIncident(Number(link[1]));
}

$("login-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const key = $("key").value.trim();
  const r = await api("POST", "/v1/session", { key });
  $("key").value = "";
  if (r.status !== 200) {
    $("login-error").textContent = problemText(r);
    return;
  }
  showApp(r.data);
});

$("logout").addEventListener("click", async () => {
  await api("DELETE", "/v1/session");
  showLogin("Signed out.");
});

// ---- views and the time range -------------------------------------------

async function showView(name) {
  state.view = name;
  $("incidents-view").hidden = name !== "incidents";
  $("anomalies-view").hidden = name !== "anomalies";
  for (const [id, v] of [["tab-incidents", "incidents"], ["tab-anomalies", "anomalies"]]) {
    $(id).classList.toggle("active", v === name);
    $(id).setAttribute("aria-selected", String(v === name));
  }
  $("app-error").textContent = "";
  if (name === "incidents") {
    if (state.es) { state.es.close(); state.es = null; }
    await reloadIncidents();
  } else {
    if (state.inc.es) { state.inc.es.close(); state.inc.es = null; }
    await reload();
  }
}

$("tab-incidents").addEventListener("click", () => showView("incidents"));
$("tab-anomalies").addEventListener("click", () => showView("anomalies"));

const PRESETS = { "1h": 3600e3, "6h": 6 * 3600e3, "24h": 24 * 3600e3, "7d": 7 * 86400e3, "30d": 30 * 86400e3 };

// localInput turns an <input type=datetime-local> value, read as UTC, into
// an RFC 3339 time ("" when empty).
function localInput(v) {
  if (!v) return "";
  const d = new Date(v + (v.length === 16 ? ":00" : "") + "Z");
  return isNaN(d.getTime()) ? "" : d.toISOString();
}

// range is the observed-time window of the picker: {since, until} as
// RFC 3339 strings, either possibly "" (open-ended). A "last …" window has
// no until, so that live records and incidents keep arriving.
function range() {
  const p = $("r-preset").value;
  if (p === "custom") return { since: localInput($("r-since").value), until: localInput($("r-until").value) };
  if (p === "all") return { since: "", until: "" };
  return { since: new Date(Math.floor(Date.now() / 1000) * 1000 - PRESETS[p]).toISOString(), until: "" };
}

function addRange(p) {
  const r = range();
  if (r.since) p.set("since", r.since);
  if (r.until) p.set("until", r.until);
  return p;
}

$("r-preset").addEventListener("change", () => {
  const custom = $("r-preset").value === "custom";
  $("r-custom").hidden = !custom;
  if (custom && !$("r-since").value) {
    const now = new Date();
    $("r-until").value = now.toISOString().slice(0, 19);
    $("r-since").value = new Date(now.getTime() - 24 * 3600e3).toISOString().slice(0, 19);
  }
  if (!custom) showView(state.view);
});
$("range").addEventListener("submit", (ev) => { ev.preventDefault(); showView(state.view); });

// setRange shows a custom window (e.g. an incident's span) in the picker.
function setRange(since, until) {
  $("r-preset").value = "custom";
  $("r-custom").hidden = false;
  $("r-since").value = new Date(since).toISOString().slice(0, 19);
  $("r-until").value = new Date(until).toISOString().slice(0, 19);
}

// ---- incidents: list and live changes -------------------------------------

function incidentParams() {
  const p = new URLSearchParams();
  const st = $("inc-status").value;
  if (st) p.set("status", st);
  const svc = $("inc-service").value.trim();
  if (svc) p.set("service", svc);
  return addRange(p);
}

$("inc-filters").addEventListener("submit", (ev) => { ev.preventDefault(); reloadIncidents(); });
$("inc-more").addEventListener("click", () => loadIncidents(false));

async function reloadIncidents() {
  state.inc.rows.clear();
  state.inc.cursor = null;
  $("incidents").tBodies[0].replaceChildren();
  openIncidentStream();
  await loadIncidents(true);
}

async function loadIncidents(first) {
  const p = incidentParams();
  p.set("limit", "50");
  if (!first && state.inc.cursor) p.set("cursor", state.inc.cursor);
  const r = await api("GET", "/v1/incidents?" + p.toString());
  if (r.status !== 200) { $("app-error").textContent = problemText(r); return; }
  for (const inc of r.data.items) putIncident(inc, false);
  state.inc.cursor = r.data.next_cursor;
  $("inc-more").hidden = !state.inc.cursor;
  $("inc-empty").hidden = state.inc.rows.size > 0;
  $("inc-count").textContent = state.inc.rows.size + " shown";
}

function openIncidentStream() {
  if (state.inc.es) state.inc.es.close();
  const es = new EventSource("/v1/incidents/stream");
  state.inc.es = es;
  es.onopen = () => { $("live-status").textContent = "live"; $("live-status").className = "live"; };
  es.onerror = () => { $("live-status").textContent = "reconnecting…"; $("live-status").className = "live off"; };
  es.addEventListener("incident", (ev) => {
    const inc = JSON.parse(ev.data);
    const known = state.inc.rows.get(inc.id);
    if (known && known.version >= inc.version) return; // at-least-once: keep the newest
    if (known || matchesIncidentFilters(inc)) putIncident(inc, !known);
    if (state.inc.selected === inc.id && (!known || known.version < inc.version)) scheduleIncidentReload();
  });
}

// matchesIncidentFilters is the page-side twin of the list's filters for
// incidents arriving live (the service filter needs members: leader only).
function matchesIncidentFilters(inc) {
  const st = $("inc-status").value;
  if (st && inc.state !== st) return false;
  const svc = $("inc-service").value.trim();
  if (svc && inc.leader !== svc && !(inc.services || []).some((s) => s.service === svc)) return false;
  const r = range();
  if (r.until && new Date(inc.opened_at) >= new Date(r.until)) return false;
  if (r.since && inc.state !== "open" && new Date(inc.last_evidence_at) < new Date(r.since)) return false;
  return true;
}

let incidentReloadTimer = null;
function scheduleIncidentReload() {
  if (incidentReloadTimer) return;
  incidentReloadTimer = setTimeout(() => { incidentReloadTimer = null; if (state.inc.selected) showIncident(state.inc.selected, true); }, 1500);
}

function signalChips(list) {
  const span = el("span", null, "chips");
  for (const s of list || []) span.appendChild(el("span", s, "chip sig-" + s));
  return span;
}

function putIncident(inc, live) {
  state.inc.rows.set(inc.id, inc);
  const body = $("incidents").tBodies[0];
  let tr = body.querySelector('tr[data-id="' + inc.id + '"]');
  const fresh = !tr;
  if (fresh) {
    tr = document.createElement("tr");
    tr.dataset.id = inc.id;
    tr.addEventListener("click", () => showIncident(inc.id));
  }
  tr.replaceChildren();
  const title = el("td", null, "title-cell");
  const badges = el("div");
  badges.appendChild(el("span", inc.state, "st st-state-" + inc.state));
  if (inc.triage !== "open") badges.appendChild(el("span", inc.triage.replace("_", " "), "st st-" + inc.triage));
  if (inc.severity) badges.appendChild(el("span", inc.severity, "st sev-" + inc.severity));
  title.appendChild(badges);
  const t = el("div", inc.title || inc.key, "inc-title");
  t.title = inc.title || "";
  title.appendChild(t);
  tr.appendChild(title);
  const since = el("td");
  since.appendChild(el("div", fmtTime(inc.opened_at)));
  const end = inc.closed_at ? new Date(inc.closed_at) : new Date(inc.last_evidence_at);
  since.appendChild(el("div", inc.closed_at ? "lasted " + fmtDuration(end - new Date(inc.opened_at)) : "ongoing, last evidence " + fmtTime(inc.last_evidence_at).slice(11), "sub"));
  tr.appendChild(since);
  const cause = el("td", null, "cause");
  (inc.services || []).slice(0, 3).forEach((s, i) => cause.appendChild(el("span", (i + 1) + ". " + s.service, "svc" + (i === 0 ? " lead" : ""))));
  if (!(inc.services || []).length && inc.leader) cause.appendChild(el("span", "1. " + inc.leader, "svc lead"));
  tr.appendChild(cause);
  const sig = el("td");
  sig.appendChild(signalChips(inc.signals));
  tr.appendChild(sig);
  tr.appendChild(el("td", inc.size, "num"));
  tr.classList.toggle("selected", state.inc.selected === inc.id);
  if (fresh) {
    // Newest opened first, as the list.
    let before = null;
    for (const row of body.rows) {
      const o = state.inc.rows.get(Number(row.dataset.id));
      if (o && (new Date(o.opened_at) < new Date(inc.opened_at) || (o.opened_at === inc.opened_at && o.id < inc.id))) { before = row; break; }
    }
    body.insertBefore(tr, before);
    if (live) tr.classList.add("new");
  }
  $("inc-empty").hidden = true;
}

// ---- one incident ---------------------------------------------------------

async function showIncident(id, quiet) {
  const r = await api("GET", "/v1/incidents/" + encodeURIComponent(id));
  if (r.status !== 200) { $("app-error").textContent = problemText(r); return; }
  const inc = r.data;
  const switched = state.inc.selected !== inc.id;
  state.inc.selected = inc.id;
  state.inc.etag = r.headers.get("ETag");
  if (!quiet) $("i-msg").textContent = "";
  for (const tr of $("incidents").tBodies[0].rows) tr.classList.toggle("selected", tr.dataset.id === String(inc.id));
  $("incident").hidden = false;
  $("i-title").textContent = inc.title || inc.key;
  const span = (inc.closed_at ? "closed " + fmtTime(inc.closed_at) : "open, last evidence " + fmtTime(inc.last_evidence_at));
  $("i-meta").textContent = "#" + inc.id + " · since " + fmtTime(inc.opened_at) + " UTC (observed) · " + span +
    " · " + inc.size + " anomalies · triage: " + inc.triage.replace("_", " ") + (inc.note ? " · note: " + inc.note : "");
  const change = inc.detail && inc.detail.change;
  $("i-change").textContent = change ? "Last change: " + change : "";
  if (switched) $("i-note").value = inc.note || "";
  state.inc.window = [new Date(inc.opened_at).getTime() - 5 * 60e3, new Date(inc.closed_at || inc.last_evidence_at).getTime() + 5 * 60e3];
  drawServices(inc.services || []);
  drawSignals(inc.evidence_by_signal || []);
  drawLanes(inc);
  drawGroups(inc);
  const h = $("i-history");
  h.replaceChildren();
  for (const e of inc.history || []) h.appendChild(el("li", fmtTime(e.at) + " " + e.actor + ": " + e.action + " " + JSON.stringify(e.details)));
  if (!inc.history || !inc.history.length) h.appendChild(el("li", "no triage yet"));
  if (switched) { $("i-drill").hidden = true; state.inc.drill = null; }
}

const REASONS = {
  novel: "new kind of record", rate: "burst of a known record", errors: "burst of errors", latency: "slower operations",
  edge_latency: "callers saw it slow", value: "value out of range", drift: "drifted from the baseline",
};

function drawServices(services) {
  const ol = $("i-services");
  ol.replaceChildren();
  for (const s of services) {
    const li = el("li", null, "svc-rank");
    const head = el("div");
    head.appendChild(el("strong", s.service));
    head.appendChild(el("span", " · " + (s.anomalies || 0) + " anomalies · score " + fmtNum(s.score, 1) + (s.onset ? " · first " + fmtTime(s.onset).slice(11) : ""), "sub"));
    head.appendChild(signalChips(s.signals));
    li.appendChild(head);
    if (s.why && s.why.length) li.appendChild(el("div", s.why.join("; "), "why"));
    const ev = el("ul", null, "evidence");
    for (const e of (s.evidence || []).slice(0, 4)) {
      ev.appendChild(el("li", e.count + " × " + (REASONS[e.reason] || e.reason || "anomaly") + " (" + e.signal + ")" +
        (e.peer_service ? ", seen by " + e.peer_service : "") + (e.example ? ": " + e.example : "")));
    }
    li.appendChild(ev);
    ol.appendChild(li);
  }
  if (!services.length) ol.appendChild(el("li", "no ranking yet"));
}

function drawSignals(signals) {
  const body = $("i-signals").tBodies[0];
  body.replaceChildren();
  for (const s of signals) {
    const tr = document.createElement("tr");
    tr.appendChild(el("td", s.signal));
    tr.appendChild(el("td", s.anomalies));
    tr.appendChild(el("td", s.services));
    tr.appendChild(el("td", s.kinds));
    tr.appendChild(el("td", fmtTime(s.first).slice(11) + " – " + fmtTime(s.last).slice(11)));
    tr.appendChild(el("td", fmtNum(s.min_p_value, 5)));
    body.appendChild(tr);
  }
}

const BUCKET_MS = { "1m": 60e3, "5m": 300e3, "15m": 900e3, "1h": 3600e3, "6h": 6 * 3600e3, "1d": 86400e3 };

// drawLanes draws one lane per service over the incident's span in
// observed time: a bar per bucket, its height the bucket's count.
function drawLanes(inc) {
  const lanes = inc.timeline || [];
  const step = BUCKET_MS[inc.timeline_bucket] || 60e3;
  $("i-bucket").textContent = "observed time, UTC, " + (inc.timeline_bucket || "") + " buckets";
  let t0 = Infinity, t1 = -Infinity, maxC = 1;
  for (const s of lanes) for (const p of s.points) {
    const t = new Date(p.start).getTime();
    t0 = Math.min(t0, t); t1 = Math.max(t1, t + step); maxC = Math.max(maxC, p.count);
  }
  if (!lanes.length) { $("i-timeline").replaceChildren(el("p", "no members", "sub")); return; }
  const W = 800, L = 170, lane = 26, T = 4, B = 18;
  const H = T + lane * lanes.length + B;
  const x = (t) => L + (W - L - 6) * (t - t0) / Math.max(step, t1 - t0);
  const svg = svgEl("svg", { viewBox: "0 0 " + W + " " + H, role: "img", "aria-label": "anomalies per service over observed time" });
  svg.style.height = H + "px";
  lanes.forEach((s, i) => {
    const y = T + i * lane;
    const lbl = svgEl("text", { x: 2, y: y + lane * 0.65, class: "lane-label" });
    lbl.textContent = (s.key.length > 24 ? s.key.slice(0, 23) + "…" : s.key) + " (" + s.total + ")";
    svg.appendChild(lbl);
    svg.appendChild(svgEl("line", { x1: L, y1: y + lane - 2, x2: W, y2: y + lane - 2, class: "axis" }));
    const c = COLORS[i % COLORS.length];
    for (const p of s.points) {
      const t = new Date(p.start).getTime();
      // sqrt: one record next to a hundred stays visible.
      const h = Math.max(3, (lane - 6) * Math.sqrt(p.count / maxC));
      const r = svgEl("rect", { x: x(t), y: y + lane - 2 - h, width: Math.max(2, x(t + step) - x(t) - 1), height: h, fill: c, class: "bar" });
      const tip = svgEl("title", {});
      tip.textContent = s.key + ": " + p.count + " at " + fmtTime(p.start) + " UTC";
      r.appendChild(tip);
      svg.appendChild(r);
    }
  });
  for (let i = 0; i <= 4; i++) {
    const t = t0 + (t1 - t0) * i / 4;
    const lbl = svgEl("text", { x: x(t), y: H - 4, "text-anchor": i === 0 ? "start" : i === 4 ? "end" : "middle" });
    lbl.textContent = new Date(t).toISOString().slice(11, 19);
    svg.appendChild(lbl);
  }
  $("i-timeline").replaceChildren(svg);
}

function valueCell(m) {
  if (m.value_explanation) return m.value_explanation;
  if (m.observed !== null && m.observed !== undefined) return fmtNum(m.observed, 3);
  return "";
}

function drawGroups(inc) {
  const body = $("i-groups").tBodies[0];
  body.replaceChildren();
  const groups = inc.groups || [];
  $("i-groups-count").textContent = groups.length < inc.groups_total ? "largest " + groups.length + " of " + inc.groups_total : inc.groups_total + " templates";
  groups.forEach((g, i) => {
    const tr = document.createElement("tr");
    tr.dataset.group = i;
    tr.appendChild(el("td", g.count, "num count"));
    tr.appendChild(el("td", g.service));
    tr.appendChild(el("td", g.signal));
    const why = el("td", REASONS[g.reason] || g.reason || "unusual");
    if (g.example.peer_service) why.textContent += " (callee " + g.example.peer_service + ")";
    tr.appendChild(why);
    const ex = el("td", null, "example");
    ex.appendChild(el("div", g.example.summary || "(no summary)"));
    const extra = g.example.value_explanation || g.example.explanation;
    ex.appendChild(el("div", extra || "(no explanation)", extra ? "explain" : "explain none"));
    ex.title = g.example.summary || "";
    tr.appendChild(ex);
    tr.appendChild(el("td", fmtTime(g.first).slice(11) + " – " + fmtTime(g.last).slice(11)));
    tr.addEventListener("click", () => drillGroup(g, tr));
    body.appendChild(tr);
  });
}

// drillGroup lists the records of one group.
async function drillGroup(g, tr) {
  for (const r of $("i-groups").tBodies[0].rows) r.classList.toggle("selected", r === tr);
  state.inc.drill = g;
  state.inc.drillCursor = null;
  $("i-members").tBodies[0].replaceChildren();
  $("i-drill").hidden = false;
  $("i-drill-title").textContent = g.count + " × " + g.service + " · " + g.signal + " · " + (g.kind || "same summary");
  await loadMembers();
}

$("i-members-more").addEventListener("click", () => loadMembers());

async function loadMembers() {
  const g = state.inc.drill;
  if (!g) return;
  const p = new URLSearchParams({ service: g.service, signal: g.signal, limit: "50" });
  if (g.kind) p.set("kind", g.kind); else p.set("summary", g.example.summary);
  if (state.inc.drillCursor) p.set("cursor", state.inc.drillCursor);
  const r = await api("GET", "/v1/incidents/" + state.inc.selected + "/anomalies?" + p.toString());
  if (r.status !== 200) { $("i-msg").textContent = problemText(r); return; }
  const body = $("i-members").tBodies[0];
  for (const m of r.data.items) {
    const tr = document.createElement("tr");
    tr.dataset.id = m.id;
    tr.appendChild(el("td", fmtTime(m.observed_at)));
    tr.appendChild(el("td", fmtTime(m.detected_at), "sub"));
    tr.appendChild(el("td", m.service));
    const sum = el("td", m.summary, "example");
    sum.title = m.summary;
    tr.appendChild(sum);
    tr.appendChild(el("td", valueCell(m)));
    const tc = el("td");
    if (m.trace_id) tc.appendChild(safeLink(m.trace_url, m.trace_id.slice(0, 12) + "…"));
    tr.appendChild(tc);
    body.appendChild(tr);
  }
  state.inc.drillCursor = r.data.next_cursor;
  $("i-members-more").hidden = !state.inc.drillCursor;
}

// The incident's span (5 minutes either side) on the Anomalies tab: every
// record of the time, members or not.
$("i-window").addEventListener("click", () => {
  if (!state.inc.window) return;
  setRange(state.inc.window[0], state.inc.window[1]);
  showView("anomalies");
});

for (const b of document.querySelectorAll("#incident .actions button")) {
  b.addEventListener("click", () => triageIncident(b.dataset.status));
}

async function triageIncident(status) {
  const id = state.inc.selected;
  if (!id) return;
  $("i-msg").textContent = "saving…";
  const r = await api("PATCH", "/v1/incidents/" + id, { status, note: $("i-note").value }, { "If-Match": state.inc.etag || "" });
  if (r.status === 412) {
    await showIncident(id, true);
    $("i-msg").textContent = "The incident changed since you opened it (new evidence or someone else); reloaded. Apply your change again.";
    return;
  }
  if (r.status !== 200) { $("i-msg").textContent = problemText(r); return; }
  putIncident(r.data, false);
  await showIncident(id, true);
  $("i-msg").textContent = "Saved: " + r.data.triage.replace("_", " ") + " (" + r.data.members_changed + " anomalies updated).";
}

// ---- anomalies: filters, list and live feed -------------------------------

function filterParams() {
  const p = new URLSearchParams();
  const add = (name, id) => { const v = $(id).value.trim(); if (v) p.set(name, v); };
  add("service", "f-service");
  add("stream", "f-stream");
  add("signal", "f-signal");
  add("status", "f-status");
  add("min_score", "f-min-score");
  add("q", "f-q");
  return p;
}

$("filters").addEventListener("submit", (ev) => { ev.preventDefault(); reload(); });
$("more").addEventListener("click", () => loadPage(false));

async function reload() {
  $("app-error").textContent = "";
  state.shown.clear();
  state.cursor = null;
  $("feed").tBodies[0].replaceChildren();
  openStream(); // first, so nothing inserted during the list load is missed
  await loadPage(true);
  drawTimeline();
}

async function loadPage(first) {
  const p = addRange(filterParams());
  p.set("limit", "50");
  if (!first && state.cursor) p.set("cursor", state.cursor);
  const r = await api("GET", "/v1/anomalies?" + p.toString());
  if (r.status !== 200) { $("app-error").textContent = problemText(r); return; }
  for (const a of r.data.items) addRow(a, false);
  state.cursor = r.data.next_cursor;
  $("more").hidden = !state.cursor;
  updateCount();
}

function updateCount() {
  $("count").textContent = state.shown.size + " shown, newest observed first";
}

function openStream(resume) {
  if (state.es) state.es.close();
  const p = addRange(filterParams());
  if (resume && state.lastEventId) p.set("last_event_id", state.lastEventId);
  else state.lastEventId = "";
  const es = new EventSource("/v1/stream?" + p.toString());
  state.es = es;
  es.onopen = () => { $("live-status").textContent = "live"; $("live-status").className = "live"; };
  es.onerror = async () => {
    $("live-status").textContent = "reconnecting…";
    $("live-status").className = "live off";
    // EventSource retries by itself (sending Last-Event-ID) unless the
    // server refused the stream (401 after the session ended, 503 at the
    // client cap): then it is CLOSED and we decide.
    if (es.readyState === EventSource.CLOSED && state.es === es) {
      const who = await api("GET", "/v1/session");
      if (who.status === 200) setTimeout(() => { if (state.es === es) openStream(true); }, 5000);
    }
  };
  es.addEventListener("anomaly", (ev) => {
    state.lastEventId = ev.lastEventId;
    const a = JSON.parse(ev.data);
    addRow(a, true);
    updateCount();
    scheduleTimeline();
  });
}

function addRow(a, live) {
  if (state.shown.has(a.id)) return;
  state.shown.add(a.id);
  const tr = document.createElement("tr");
  tr.dataset.id = a.id;
  tr.dataset.observed = new Date(a.observed_at).getTime();
  tr.appendChild(el("td", fmtTime(a.observed_at)));
  tr.appendChild(el("td", a.service));
  tr.appendChild(el("td", a.stream));
  tr.appendChild(el("td", a.signal));
  tr.appendChild(el("td", fmtNum(a.score, 2)));
  tr.appendChild(el("td", fmtNum(a.p_value, 4)));
  const st = el("td");
  st.appendChild(el("span", a.status.replace("_", " "), "st st-" + a.status));
  tr.appendChild(st);
  const sum = el("td", a.summary);
  sum.title = a.summary;
  tr.appendChild(sum);
  tr.appendChild(el("td", fmtTime(a.detected_at), "sub"));
  tr.addEventListener("click", () => showDetail(a.id));
  const body = $("feed").tBodies[0];
  if (live) {
    // The feed is in observed order: a late record goes where it belongs.
    tr.classList.add("new");
    const t = Number(tr.dataset.observed);
    let before = null;
    for (const row of body.rows) {
      if (Number(row.dataset.observed) <= t) { before = row; break; }
    }
    body.insertBefore(tr, before);
  } else {
    body.appendChild(tr);
  }
}

// ---- one anomaly: detail and triage ---------------------------------------

async function showDetail(id) {
  const r = await api("GET", "/v1/anomalies/" + encodeURIComponent(id));
  if (r.status !== 200) { $("app-error").textContent = problemText(r); return; }
  const a = r.data;
  state.selected = a.id;
  state.etag = r.headers.get("ETag");
  $("d-msg").textContent = "";
  for (const tr of $("feed").tBodies[0].rows) tr.classList.toggle("selected", tr.dataset.id === String(a.id));
  $("detail").hidden = false;
  $("d-title").textContent = a.summary || "(no summary)";
  $("d-meta").textContent = "#" + a.id + " · " + a.signal + " · " + a.service + " · " + a.stream + " · " + a.status.replace("_", " ") +
    " · observed " + fmtTime(a.observed_at) + " · ingested " + fmtTime(a.detected_at);
  $("d-explanation").textContent = [a.value_explanation, a.explanation].filter(Boolean).join(" ") || "(no explanation)";
  const dl = $("d-scores");
  dl.replaceChildren();
  for (const [k, v, d] of [["score", a.score, 3], ["p-value", a.p_value, 5], ["NCD", a.ncd, 3], ["compression ratio", a.compression_ratio, 3], ["entropy (bits/byte)", a.entropy, 3], ["severity", a.severity]]) {
    dl.appendChild(el("dt", k));
    dl.appendChild(el("dd", typeof v === "number" || v === null ? fmtNum(v, d) : (v || "–")));
  }
  dl.appendChild(el("dt", "trace id"));
  const tdd = el("dd");
  tdd.appendChild(a.trace_id ? safeLink(a.trace_url, a.trace_id) : el("span", "–"));
  dl.appendChild(tdd);
  $("note").value = a.note || "";
  $("d-record").textContent = JSON.stringify(a.record, null, 2);
  $("d-resource").textContent = JSON.stringify(a.resource, null, 2);
  $("d-detector").textContent = a.detector ? JSON.stringify(a.detector.config, null, 2) : "(unknown)";
  const h = $("d-history");
  h.replaceChildren();
  for (const e of a.history) {
    h.appendChild(el("li", fmtTime(e.at) + " " + e.actor + ": " + e.action + " " + JSON.stringify(e.details)));
  }
}

for (const b of document.querySelectorAll("#detail .actions button")) {
  b.addEventListener("click", () => setStatus(b.dataset.status));
}

async function setStatus(status) {
  if (!state.selected) return;
  $("d-msg").textContent = "saving…";
  const r = await api("PATCH", "/v1/anomalies/" + state.selected, { status, note: $("note").value }, { "If-Match": state.etag || "" });
  if (r.status === 412) {
    await showDetail(state.selected);
    $("d-msg").textContent = "Someone else changed this anomaly; reloaded. Apply your change again.";
    return;
  }
  if (r.status !== 200) { $("d-msg").textContent = problemText(r); return; }
  await showDetail(r.data.id);
  $("d-msg").textContent = "Saved: " + r.data.status.replace("_", " ") + ".";
  const tr = $("feed").querySelector('tr[data-id="' + r.data.id + '"]');
  if (tr) {
    const span = tr.cells[6].firstChild;
    span.textContent = r.data.status.replace("_", " ");
    span.className = "st st-" + r.data.status;
  }
}

// ---- anomalies timeline chart (plain SVG) ---------------------------------

let timelineTimer = null;
function scheduleTimeline() {
  if (timelineTimer) return;
  timelineTimer = setTimeout(() => { timelineTimer = null; drawTimeline(); }, 2000);
}

const SVG = "http://www.w3.org/2000/svg";
function svgEl(tag, attrs) {
  const e = document.createElementNS(SVG, tag);
  for (const k in attrs) e.setAttribute(k, attrs[k]);
  return e;
}

// chartWindow is the observed-time window of the chart: the picker's (a
// "last …" window ends now), or, for "all time", the 7 days up to the
// newest anomaly matching the filters.
async function chartWindow() {
  const r = range();
  if (r.since && r.until) return r;
  if (r.since && PRESETS[$("r-preset").value]) {
    return { since: r.since, until: new Date(Math.ceil((Date.now() + 1000) / 1000) * 1000).toISOString() };
  }
  const p = filterParams();
  p.set("limit", "1");
  if (r.until) p.set("until", r.until);
  const newest = await api("GET", "/v1/anomalies?" + p.toString());
  let until = r.until ? new Date(r.until) : new Date();
  if (!r.until && newest.status === 200 && newest.data.items.length) until = new Date(new Date(newest.data.items[0].observed_at).getTime() + 1000);
  let since = r.since ? new Date(r.since) : new Date(until.getTime() - 7 * 86400e3);
  if (since >= until) since = new Date(until.getTime() - 3600e3);
  return { since: since.toISOString(), until: until.toISOString() };
}

// bucketFor picks the smallest bucket that draws the window in at most 150.
function bucketFor(ms) {
  for (const b of ["1m", "5m", "15m", "1h", "6h"]) if (ms / BUCKET_MS[b] <= 150) return b;
  return "1d";
}

async function drawTimeline() {
  const win = await chartWindow();
  const sinceMs = new Date(win.since).getTime();
  const untilMs = new Date(win.until).getTime();
  const bucket = bucketFor(untilMs - sinceMs);
  const p = filterParams();
  p.set("since", win.since);
  p.set("until", win.until);
  p.set("bucket", bucket);
  p.set("group_by", "service");
  p.set("top", "7");
  const r = await api("GET", "/v1/analytics/timeline?" + p.toString());
  if (r.status !== 200) { $("app-error").textContent = problemText(r); return; }
  $("tl-window").textContent = fmtTime(win.since) + " – " + fmtTime(win.until) + " UTC, observed time, " + bucket + " buckets";
  const since = new Date(r.data.window.since).getTime();
  const until = new Date(r.data.window.until).getTime();
  const W = 800, H = 180, L = 34, B = 18, T = 8;
  let maxY = 1;
  for (const s of r.data.series) for (const pt of s.points) maxY = Math.max(maxY, pt.count);
  const x = (t) => L + (W - L - 6) * (t - since) / Math.max(1, until - since);
  const y = (v) => H - B - (H - B - T) * v / maxY;
  const svg = svgEl("svg", { viewBox: "0 0 " + W + " " + H, preserveAspectRatio: "none", role: "img", "aria-label": "anomalies per service" });
  svg.appendChild(svgEl("line", { x1: L, y1: H - B, x2: W, y2: H - B, class: "axis" }));
  svg.appendChild(svgEl("line", { x1: L, y1: T, x2: L, y2: H - B, class: "axis" }));
  const yl = svgEl("text", { x: 2, y: T + 8 }); yl.textContent = String(maxY); svg.appendChild(yl);
  const y0 = svgEl("text", { x: 2, y: H - B }); y0.textContent = "0"; svg.appendChild(y0);
  const long = until - since > 2 * 86400e3;
  for (let i = 0; i <= 4; i++) {
    const t = since + (until - since) * i / 4;
    const lbl = svgEl("text", { x: x(t), y: H - 4, "text-anchor": i === 0 ? "start" : i === 4 ? "end" : "middle" });
    lbl.textContent = long ? new Date(t).toISOString().slice(5, 16).replace("T", " ") : new Date(t).toISOString().slice(11, 16);
    svg.appendChild(lbl);
  }
  const legend = $("legend");
  legend.replaceChildren();
  const step = BUCKET_MS[bucket];
  r.data.series.forEach((s, i) => {
    const c = COLORS[i % COLORS.length];
    // Fill empty buckets with zero so lines drop to the axis. Buckets are
    // aligned on 2000-01-01 UTC, which every bucket width divides.
    const counts = new Map(s.points.map((pt) => [new Date(pt.start).getTime(), pt.count]));
    const origin = Date.UTC(2000, 0, 1);
    const pts = [];
    for (let t = origin + Math.floor((since - origin) / step) * step; t <= until; t += step) pts.push([x(Math.max(t, since)), y(counts.get(t) || 0)]);
    svg.appendChild(svgEl("polyline", { points: pts.map((pt) => pt[0].toFixed(1) + "," + pt[1].toFixed(1)).join(" "), fill: "none", stroke: c, "stroke-width": 2 }));
    const item = el("span", s.key + " (" + s.total + ")");
    item.style.setProperty("--c", c);
    legend.appendChild(item);
  });
  if (r.data.series.length === 0) legend.appendChild(el("span", "no anomalies in this window"));
  $("timeline").replaceChildren(svg);
}

// ---- start ---------------------------------------------------------------

(async function start() {
  const r = await api("GET", "/v1/session");
  if (r.status === 200) showApp(r.data); else showLogin("");
})();
