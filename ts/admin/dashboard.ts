/**
 * The dashboard served at `GET /`: one self-contained page (inline CSS and JS,
 * nothing fetched from elsewhere). It reads `/api/events` once, then follows
 * `/api/stream` (server-sent events): a `stats` snapshot every second, from
 * which it derives connections/s and throughput, and `backend` events.
 *
 * Hooks for tests and scripts: each pool is `section[data-pool]`, each backend
 * row `tr[data-backend][data-status]` (status: up, down, ejected, drain, maint); each HTTP
 * listener's routes are `section[data-routes="LISTENER"]` with a row `tr[data-route="NAME"]`
 * per route (cells: route, match, pool, req/s, 2xx, 4xx, 5xx, retries, average latency).
 * Repeating events arrive folded (`repeated`: how many more the server held back).
 */

const PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>Switchyard</title>
<style>
:root{--up:#1a7f37;--down:#cf222e;--ejected:#bf8700;--drain:#0969da;--maint:#6e7781;--mute:#656d76;--line:#d0d7de}
*{box-sizing:border-box}
body{font:13px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;background:#f6f8fa;color:#1f2328}
header{display:flex;gap:16px;align-items:baseline;padding:10px 16px;background:#24292f;color:#fff}
header h1{font-size:16px;margin:0}
header span{font-size:12px;opacity:.85}
main{padding:12px 16px;display:grid;gap:12px}
section{background:#fff;border:1px solid var(--line);border-radius:6px;padding:8px 12px;overflow-x:auto}
h2{font-size:14px;margin:2px 0 8px}
h2 small{font-weight:400;color:var(--mute);margin-left:8px}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:3px 8px;border-bottom:1px solid #eaeef2;white-space:nowrap}
th{font-weight:600;color:var(--mute);font-size:12px}
.n{text-align:right;font-variant-numeric:tabular-nums}
.badge{display:inline-block;min-width:60px;text-align:center;border-radius:10px;padding:0 8px;color:#fff;font-size:12px}
.s-up{background:var(--up)}.s-down{background:var(--down)}.s-ejected{background:var(--ejected)}.s-drain{background:var(--drain)}.s-maint{background:var(--maint)}
.k-up,.k-ready,.k-added{color:var(--up)}.k-down,.k-removed{color:var(--down)}.k-ejected{color:var(--ejected)}.k-drain{color:var(--drain)}
svg{width:120px;height:24px;vertical-align:middle;background:#f6f8fa;border-bottom:1px solid #d0d7de}
polyline{fill:none;stroke:#0969da;stroke-width:1.5}
.why{max-width:320px;overflow:hidden;text-overflow:ellipsis;color:var(--mute)}
#events{margin:0;padding:0;max-height:280px;overflow:auto;list-style:none;font:12px/1.5 ui-monospace,monospace}
</style></head><body>
<header><h1>Switchyard</h1><span id="conn">connecting…</span><span id="summary"></span></header>
<main>
<section><h2>Listeners</h2><table><thead><tr><th>name</th><th>address</th><th>protocol</th><th>pool</th><th class="n">active</th><th>conn/s</th><th class="n">accepted</th><th class="n">no backend</th></tr></thead><tbody id="listeners"></tbody></table></section>
<div id="routes" style="display:grid;gap:12px"></div>
<div id="pools" style="display:grid;gap:12px"></div>
<section><h2>Recent state changes</h2><ul id="events"></ul></section>
</main>
<script>
"use strict";
const N = 60, W = 120, H = 24, prev = new Map(), hist = new Map(), why = new Map(), events = [];
const $ = (id) => document.getElementById(id);
function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  for (const k of kids) e.append(k instanceof Node ? k : document.createTextNode(String(k)));
  return e;
}
function bytes(n) {
  const u = ["B", "KB", "MB", "GB", "TB"]; let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(1) : Math.round(n)) + " " + u[i];
}
function rate(key, value, t) {
  const p = prev.get(key); prev.set(key, { v: value, t });
  return !p || t <= p.t ? 0 : Math.max(0, (value - p.v) * 1000 / (t - p.t));
}
function series(key, x) {
  let h = hist.get(key); if (!h) hist.set(key, h = []);
  h.push(x); if (h.length > N) h.shift(); return h;
}
function spark(h, label) {
  const max = Math.max(1e-9, ...h), ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg"), pl = document.createElementNS(ns, "polyline");
  svg.setAttribute("viewBox", "0 0 " + W + " " + H);
  pl.setAttribute("points", h.map((v, i) => ((N - h.length + i) * W / (N - 1)).toFixed(1) + "," + (H - 1 - v / max * (H - 2)).toFixed(1)).join(" "));
  svg.append(pl);
  return el("span", { title: label }, svg, " " + label);
}
function reason(pool, b) {
  const c = b.check && b.check.last;
  if (c) return (c.ok ? "ok" : "failed") + ": " + c.reason + " (" + Math.round(c.duration_ms) + " ms)";
  if (b.ejected) return "ejected, " + Math.ceil(b.ejection_left_ms / 1000) + " s left" + (why.has(pool + "/" + b.address) ? " — " + why.get(pool + "/" + b.address) : "");
  return why.get(pool + "/" + b.address) || "";
}
function render(s) {
  if (s.error) { $("conn").textContent = "error: " + s.error; return; }
  const t = s.time;
  $("summary").textContent = new Date(t).toLocaleTimeString();
  $("listeners").replaceChildren(...s.listeners.map((l) => {
    const r = rate("l/" + l.name, l.accepted, t);
    return el("tr", { "data-listener": l.name }, el("td", {}, l.name), el("td", {}, l.address), el("td", {}, l.protocol), el("td", {}, l.pool), el("td", { class: "n" }, l.active),
      el("td", {}, spark(series("l/" + l.name, r), r.toFixed(1))), el("td", { class: "n" }, l.accepted), el("td", { class: "n" }, l.no_backend));
  }));
  $("routes").replaceChildren(...s.listeners.filter((l) => l.routes.length).map((l) => el("section", { "data-routes": l.name },
    el("h2", {}, "routes of " + l.name, el("small", {}, "first match wins · " + l.no_route + " unmatched (404)")),
    el("table", {}, el("thead", {}, el("tr", {}, ...["route", "match", "pool", "req/s", "2xx", "4xx", "5xx", "retries", "avg"].map((h, i) => el("th", i > 3 ? { class: "n" } : {}, h)))),
      el("tbody", {}, ...l.routes.map((r) => {
        const key = "r/" + l.name + "/" + r.name, n = r.latency_buckets[r.latency_buckets.length - 1], rps = rate(key, n, t);
        return el("tr", { "data-route": r.name },
          el("td", {}, r.name), el("td", { class: "why", title: r.match }, r.match), el("td", {}, r.pool),
          el("td", {}, spark(series(key, rps), rps.toFixed(1))),
          el("td", { class: "n" }, r.responses_2xx), el("td", { class: "n" }, r.responses_4xx), el("td", { class: "n" }, r.responses_5xx),
          el("td", { class: "n" }, r.retries), el("td", { class: "n" }, n ? (r.latency_us_sum / n / 1000).toFixed(2) + " ms" : "–"));
      }))))));
  $("pools").replaceChildren(...s.pools.map((p) => el("section", { "data-pool": p.name },
    el("h2", {}, "pool " + p.name, el("small", {}, p.algorithm + " · " + p.active + " active · share " + (p.share_min * 100).toFixed(1) + "–" + (p.share_max * 100).toFixed(1) + "%")),
    el("table", {}, el("thead", {}, el("tr", {}, ...["status", "backend", "weight", "active", "conn/s", "throughput", "total", "errors", "last check / reason"].map((h) => el("th", {}, h)))),
      el("tbody", {}, ...p.backends.map((b) => {
        const key = p.name + "/" + b.address;
        const cps = rate("c/" + key, b.total, t), bps = rate("b/" + key, b.bytes_in + b.bytes_out, t);
        return el("tr", { "data-backend": b.address, "data-status": b.status },
          el("td", {}, el("span", { class: "badge s-" + b.status }, b.status)),
          el("td", {}, b.address + (b.backup ? " (backup)" : "")),
          el("td", { class: "n" }, b.weight), el("td", { class: "n" }, b.active),
          el("td", {}, spark(series("c/" + key, cps), cps.toFixed(1))),
          el("td", {}, spark(series("b/" + key, bps), bytes(bps) + "/s")),
          el("td", { class: "n" }, b.total), el("td", { class: "n" }, b.connect_errors + b.connect_timeouts),
          el("td", { class: "why", title: reason(p.name, b) }, reason(p.name, b)));
      }))))));
}
function addEvent(e) {
  if (e.address) why.set(e.pool + "/" + e.address, e.kind + ": " + e.reason);
  events.push(e); if (events.length > 100) events.shift();
  $("events").replaceChildren(...events.slice().reverse().map((x) => el("li", {},
    new Date(x.time).toLocaleTimeString() + "  " + x.pool + " " + x.address + "  ", el("b", { class: "k-" + x.kind }, x.kind), "  " + x.reason + (x.repeated ? "  (+" + x.repeated + " more like it)" : ""))));
}
fetch("/api/events", { credentials: "same-origin" }).then((r) => r.ok ? r.json() : { events: [] }).then((d) => d.events.forEach(addEvent)).catch(() => {});
const es = new EventSource("/api/stream");
es.addEventListener("stats", (m) => { $("conn").textContent = "live"; render(JSON.parse(m.data)); });
es.addEventListener("backend", (m) => addEvent(JSON.parse(m.data)));
es.onerror = () => { $("conn").textContent = "reconnecting… (with a token: open /?token=…)"; };
</script>
</body></html>
`;

/** The page, as served. */
export function dashboardHtml(): string {
  return PAGE;
}
