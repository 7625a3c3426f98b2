// Driftlock web page. Plain JavaScript, no build step, no third-party code.
// Security notes: the API key is sent once to POST /v1/session and then
// forgotten; the session lives in an HttpOnly SameSite=Strict cookie that
// EventSource and fetch send automatically. Every text from the store is put
// in the DOM with textContent (never innerHTML), and state changes carry the
// X-Driftlock-CSRF header the server requires for cookie sessions.
"use strict";

const $ = (id) => document.getElementById(id);
const COLORS = ["#4fb3ff", "#ff6b6b", "#5fd38d", "#ffc24b", "#a28bff", "#ff9f5a", "#4fe0d0", "#d98bd9"];
const state = { es: null, lastEventId: "", shown: new Set(), cursor: null, selected: null, etag: null, role: "" };

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

// ---- login -------------------------------------------------------------

function showLogin(msg) {
  if (state.es) { state.es.close(); state.es = null; }
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
  await reload();
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

// ---- filters, list and live feed ----------------------------------------

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
  const p = filterParams();
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
  $("count").textContent = state.shown.size + " shown";
}

function openStream(resume) {
  if (state.es) state.es.close();
  const p = filterParams();
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
  tr.appendChild(el("td", fmtTime(a.detected_at)));
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
  tr.addEventListener("click", () => showDetail(a.id));
  const body = $("feed").tBodies[0];
  if (live) {
    tr.classList.add("new");
    body.insertBefore(tr, body.firstChild);
  } else {
    body.appendChild(tr);
  }
}

// ---- detail and triage --------------------------------------------------

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
  $("d-meta").textContent = "#" + a.id + " · " + a.signal + " · " + a.service + " · " + a.stream + " · " + a.status.replace("_", " ") + " · detected " + fmtTime(a.detected_at);
  $("d-explanation").textContent = a.explanation || "(no explanation)";
  const dl = $("d-scores");
  dl.replaceChildren();
  for (const [k, v, d] of [["score", a.score, 3], ["p-value", a.p_value, 5], ["NCD", a.ncd, 3], ["compression ratio", a.compression_ratio, 3], ["entropy (bits/byte)", a.entropy, 3], ["severity", a.severity], ["trace id", a.trace_id]]) {
    dl.appendChild(el("dt", k));
    dl.appendChild(el("dd", typeof v === "number" || v === null ? fmtNum(v, d) : (v || "–")));
  }
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

for (const b of document.querySelectorAll(".actions button")) {
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

// ---- timeline chart (plain SVG) ----------------------------------------

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

async function drawTimeline() {
  const p = filterParams();
  p.set("bucket", "1h");
  p.set("group_by", "service");
  p.set("top", "7");
  const r = await api("GET", "/v1/analytics/timeline?" + p.toString());
  if (r.status !== 200) return;
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
  for (let i = 0; i <= 4; i++) {
    const t = since + (until - since) * i / 4;
    const lbl = svgEl("text", { x: x(t), y: H - 4, "text-anchor": i === 0 ? "start" : i === 4 ? "end" : "middle" });
    lbl.textContent = new Date(t).toISOString().slice(11, 16);
    svg.appendChild(lbl);
  }
  const legend = $("legend");
  legend.replaceChildren();
  r.data.series.forEach((s, i) => {
    const c = COLORS[i % COLORS.length];
    // Fill empty buckets with zero so lines drop to the axis.
    const counts = new Map(s.points.map((pt) => [new Date(pt.start).getTime(), pt.count]));
    const step = 3600 * 1000;
    const pts = [];
    for (let t = Math.floor(since / step) * step; t <= until; t += step) pts.push([x(Math.max(t, since)), y(counts.get(t) || 0)]);
    svg.appendChild(svgEl("polyline", { points: pts.map((p) => p[0].toFixed(1) + "," + p[1].toFixed(1)).join(" "), fill: "none", stroke: c, "stroke-width": 2 }));
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
