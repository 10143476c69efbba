#include "admin/status_page.h"

namespace sb::admin {

std::string_view status_page_html() {
    // Kept in one raw string so the binary carries the whole page.
    static constexpr std::string_view kPage = R"HTML(<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>switchboard</title>
<style>
  :root { --bg:#0f1419; --panel:#182028; --line:#2a3642; --text:#e6edf3; --dim:#8b98a5;
          --up:#3fb950; --down:#f85149; --warn:#d29922; --accent:#58a6ff; }
  * { box-sizing: border-box; }
  body { margin:0; font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif; background:var(--bg); color:var(--text); }
  header { display:flex; align-items:baseline; gap:16px; padding:16px 24px; border-bottom:1px solid var(--line); }
  header h1 { margin:0; font-size:20px; letter-spacing:.5px; }
  header .meta { color:var(--dim); }
  .badge { padding:2px 10px; border-radius:999px; font-weight:600; font-size:12px; }
  .badge.up { background:rgba(63,185,80,.15); color:var(--up); }
  .badge.down { background:rgba(248,81,73,.15); color:var(--down); }
  .badge.retrying, .badge.draining { background:rgba(210,153,34,.15); color:var(--warn); }
  main { padding:20px 24px; display:grid; gap:20px; }
  .cards { display:grid; grid-template-columns:repeat(auto-fit,minmax(170px,1fr)); gap:12px; }
  .card { background:var(--panel); border:1px solid var(--line); border-radius:10px; padding:14px 16px; }
  .card .label { color:var(--dim); font-size:12px; text-transform:uppercase; letter-spacing:.6px; }
  .card .value { font-size:28px; font-weight:650; font-variant-numeric:tabular-nums; margin-top:4px; }
  section { background:var(--panel); border:1px solid var(--line); border-radius:10px; padding:14px 16px; }
  section h2 { margin:0 0 10px; font-size:15px; }
  section h2.rooms-title { margin-top:14px; }
  section h2 .sub { color:var(--dim); font-weight:400; margin-left:8px; font-size:13px; }
  table { width:100%; border-collapse:collapse; font-variant-numeric:tabular-nums; }
  th, td { text-align:left; padding:6px 8px; border-top:1px solid var(--line); }
  th { color:var(--dim); font-weight:500; font-size:12px; border-top:none; }
  td.num, th.num { text-align:right; }
  .bar { height:8px; border-radius:4px; background:var(--line); overflow:hidden; min-width:80px; }
  .bar > div { height:100%; background:var(--accent); }
  canvas { width:100%; height:70px; display:block; }
  footer { color:var(--dim); padding:0 24px 20px; font-size:12px; }
</style>
</head>
<body>
<header>
  <h1>switchboard</h1>
  <span id="health" class="badge up">serving</span>
  <span class="meta">version <span id="version">–</span> · up <span id="uptime">–</span> · configuration generation <span id="generation">–</span></span>
</header>
<main>
  <div class="cards">
    <div class="card"><div class="label">Open connections</div><div class="value" id="connections-active">–</div></div>
    <div class="card"><div class="label">New connections / s</div><div class="value" id="connections-rate">–</div></div>
    <div class="card"><div class="label">Messages / s</div><div class="value" id="messages-rate">–</div></div>
    <div class="card"><div class="label">HTTP requests / s</div><div class="value" id="requests-rate">–</div></div>
    <div class="card"><div class="label">Traffic</div><div class="value" id="bytes-rate">–</div></div>
    <div class="card"><div class="label">Refused / s</div><div class="value" id="rejected-rate">–</div></div>
    <div class="card"><div class="label">Rooms</div><div class="value" id="rooms">–</div></div>
  </div>
  <section><h2>Messages per second <span class="sub">last two minutes</span></h2><canvas id="spark" width="1200" height="70"></canvas></section>
  <section><h2>Listeners</h2><table id="listeners"><thead><tr><th>Name</th><th>Address</th><th>TLS</th><th class="num">Open</th><th class="num">Total</th></tr></thead><tbody></tbody></table></section>
  <div id="pools"></div>
</main>
<footer>Live from /events every second · JSON at <a href="/status" style="color:var(--accent)">/status</a> · Prometheus at <a href="/metrics" style="color:var(--accent)">/metrics</a></footer>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
const fmt = (n) => n >= 1e6 ? (n / 1e6).toFixed(1) + "M" : n >= 1e4 ? (n / 1e3).toFixed(1) + "k" : String(Math.round(n));
const bytes = (n) => n >= 1 << 30 ? (n / (1 << 30)).toFixed(1) + " GiB/s" : n >= 1 << 20 ? (n / (1 << 20)).toFixed(1) + " MiB/s" : n >= 1024 ? (n / 1024).toFixed(1) + " KiB/s" : Math.round(n) + " B/s";
const duration = (s) => s < 120 ? Math.round(s) + "s" : s < 7200 ? Math.round(s / 60) + "m" : (s / 3600).toFixed(1) + "h";
const esc = (s) => String(s).replace(/[&<>"]/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"}[c]));
let status = null, previous = null, history = [];
const shedSeen = {};  // pool -> {t, shed}: the last sample, for a shed rate per pool
const ROOMS_LISTED = 50;  // views.cpp kListedRooms

// Health check column: passive only, or the last probe's result, error and latency.
function checkText(h) {
  if (!h || !h.checked) return "passive";
  if (h.last_result === null) return "pending";
  const ms = h.last_check_ms === null ? "" : " · " + h.last_check_ms.toFixed(1) + " ms";
  return h.last_result === "ok" ? "ok" + ms : `<span style="color:var(--down)">${esc(h.last_error || "failed")}</span>` + ms;
}
// Slow start column: the elapsed share of the window, or nothing outside it.
function slowText(s) {
  if (s === null || s === undefined) return "–";
  const f = typeof s === "number" ? s : s.fraction;
  return `<div class="bar" title="slow start ${Math.round(100 * f)}%"><div style="width:${100 * f}%;background:var(--warn)"></div></div>`;
}

function renderStatic() {
  $("version").textContent = status.version;
  const lt = $("listeners").querySelector("tbody");
  lt.innerHTML = status.listeners.map((l) => `<tr data-listener="${esc(l.name)}"><td>${esc(l.name)}</td><td>${esc(l.address)}</td><td>${l.tls ? "yes" : "no"}</td><td class="num open">${l.active_connections}</td><td class="num total">${l.total_connections}</td></tr>`).join("");
  $("pools").innerHTML = status.pools.map((p) => `
    <section data-pool="${esc(p.name)}"><h2>Pool ${esc(p.name)} <span class="sub">${esc(p.algorithm)} · key ${esc(p.hash_key)}${p.load_factor ? " · load factor " + p.load_factor : ""}${p.rehome ? " · rehome" : ""} · <span class="rooms">${p.rooms}</span> rooms${p.admission ? ` · shed <span class="shed-rate">0</span>/s` : ""}</span></h2>
    <table><thead><tr><th>Backend</th><th>State</th><th class="num">Weight</th><th class="num">Connections</th><th></th><th class="num">Share of hash space</th><th class="num">Connect failures</th><th>Health check</th><th>Slow start</th></tr></thead><tbody>
    ${p.backends.map((b) => `<tr data-backend="${esc(b.address)}"><td>${esc(b.address)}</td><td><span class="badge ${b.state}">${b.state}</span></td><td class="num">${b.weight}</td><td class="num active">${b.active_connections}</td><td><div class="bar"><div style="width:0%"></div></div></td><td class="num">${b.share === null ? "–" : (100 * b.share).toFixed(1) + "%"}</td><td class="num">${b.connect_failures}</td><td class="check">${checkText(b.health)}</td><td class="slow">${slowText(b.slow_start)}</td></tr>`).join("")}
    </tbody></table>
    <h2 class="rooms-title">Rooms <span class="sub">where each room lives (the ${ROOMS_LISTED} largest)</span></h2>
    <table class="room-list"><thead><tr><th>Room</th><th>Backend</th><th class="num">Connections</th></tr></thead><tbody></tbody></table></section>`).join("");
  for (const p of status.pools) renderRooms(p.name, p.largest_rooms);
}

// The rooms table of a pool: each room's key, the backend it lives on, its connections.
function renderRooms(pool, rooms) {
  const section = document.querySelector(`section[data-pool="${CSS.escape(pool)}"]`);
  if (!section || !rooms) return;
  section.querySelector(".room-list tbody").innerHTML = rooms.length
    ? rooms.map((r) => `<tr data-room="${esc(r.key)}"><td>${esc(r.key)}</td><td class="room-backend">${esc(r.backend)}</td><td class="num">${r.connections}</td></tr>`).join("")
    : `<tr><td colspan="3" style="color:var(--dim)">no room has a connection</td></tr>`;
}

function draw() {
  const c = $("spark"), g = c.getContext("2d");
  g.clearRect(0, 0, c.width, c.height);
  const max = Math.max(1, ...history);
  g.strokeStyle = "#58a6ff"; g.lineWidth = 2; g.beginPath();
  history.forEach((v, i) => { const x = (i / 119) * c.width, y = c.height - 4 - (v / max) * (c.height - 8); i ? g.lineTo(x, y) : g.moveTo(x, y); });
  g.stroke();
}

function onLive(live) {
  $("uptime").textContent = duration(live.uptime_seconds);
  $("generation").textContent = live.generation;
  $("health").textContent = live.draining ? "draining" : "serving";
  $("health").className = "badge " + (live.draining ? "draining" : "up");
  let active = 0, total = 0, rejected = 0, messages = 0, requests = 0, traffic = 0, rooms = 0;
  for (const [name, l] of Object.entries(live.listeners)) {
    active += l.active; total += l.total; rejected += l.rejected;
    const row = document.querySelector(`tr[data-listener="${CSS.escape(name)}"]`);
    if (row) { row.querySelector(".open").textContent = l.active; row.querySelector(".total").textContent = l.total; }
  }
  for (const [name, p] of Object.entries(live.pools)) {
    messages += p.messages; requests += p.requests; traffic += p.bytes; rooms += p.rooms;
    const section = document.querySelector(`section[data-pool="${CSS.escape(name)}"]`);
    if (!section) continue;
    section.querySelector(".rooms").textContent = p.rooms;
    renderRooms(name, p.largest_rooms);
    // Admission control: connections shed per second by this pool's buckets.
    const seen = shedSeen[name], shedRate = section.querySelector(".shed-rate");
    if (shedRate && seen && live.uptime_seconds > seen.t) {
      shedRate.textContent = fmt((p.shed - seen.shed) / (live.uptime_seconds - seen.t));
    }
    shedSeen[name] = { t: live.uptime_seconds, shed: p.shed };
    const most = Math.max(1, ...Object.values(p.backends).map((b) => b.active));
    for (const [address, b] of Object.entries(p.backends)) {
      const row = section.querySelector(`tr[data-backend="${CSS.escape(address)}"]`);
      if (!row) continue;
      row.querySelector(".active").textContent = b.active;
      row.querySelector(".badge").textContent = b.state;
      row.querySelector(".badge").className = "badge " + b.state;
      row.querySelector(".bar > div").style.width = (100 * b.active / most) + "%";
      if (b.health) row.querySelector(".check").innerHTML = checkText(b.health);
      row.querySelector(".slow").innerHTML = slowText(b.slow_start);
    }
  }
  $("connections-active").textContent = fmt(active);
  $("rooms").textContent = fmt(rooms);
  const now = { t: live.uptime_seconds, total, rejected, messages, requests, traffic };
  if (previous && now.t > previous.t) {
    const dt = now.t - previous.t;
    const mps = (now.messages - previous.messages) / dt;
    $("connections-rate").textContent = fmt((now.total - previous.total) / dt);
    $("messages-rate").textContent = fmt(mps);
    $("requests-rate").textContent = fmt((now.requests - previous.requests) / dt);
    $("bytes-rate").textContent = bytes((now.traffic - previous.traffic) / dt);
    $("rejected-rate").textContent = fmt((now.rejected - previous.rejected) / dt);
    history.push(mps); if (history.length > 120) history.shift();
    draw();
  }
  previous = now;
}

fetch("/status").then((r) => r.json()).then((s) => {
  status = s; renderStatic();
  const events = new EventSource("/events");
  events.onmessage = (e) => onLive(JSON.parse(e.data));
  setInterval(() => fetch("/status").then((r) => r.json()).then((s) => {
    // New listeners, pools or backends (a reload, or DNS records) redraw the tables.
    const members = (x) => JSON.stringify(x.pools.map((p) => p.backends.map((b) => b.address)));
    if (s.generation !== status.generation || members(s) !== members(status)) { status = s; renderStatic(); }
  }), 5000);
});
</script>
</body>
</html>
)HTML";
    return kPage;
}

}  // namespace sb::admin
