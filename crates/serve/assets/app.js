// pcapidx serve: the page. Everything it shows comes from /api/; the URL
// holds the view (filters, sort, columns, selected flow, tab), so a copied
// link opens the same view; /api/events says when the index changed.
"use strict";

const $ = (id) => document.getElementById(id);
const ALL_COLUMNS = ["flow_id", "proto", "src_ip", "src_port", "dst_ip", "dst_port", "vlan",
  "vlan_inner", "ethertype", "service", "first_ts_ns", "last_ts_ns", "packets_fwd", "packets_rev",
  "bytes_fwd", "bytes_rev", "tcp_flags_fwd", "tcp_flags_rev", "src_mac", "dst_mac", "files",
  "community_id", "payload_fwd", "payload_rev", "missed_fwd", "missed_rev", "turned"];
const DEFAULT_COLUMNS = ["flow_id", "proto", "src_ip", "src_port", "dst_ip", "dst_port", "vlan",
  "service", "first_ts_ns", "last_ts_ns", "packets_fwd", "packets_rev", "bytes_fwd", "bytes_rev"];
const FILTERS = ["where", "host", "grep", "since", "until", "file"];
const PROTO = { 1: "icmp", 6: "tcp", 17: "udp", 58: "icmpv6", 132: "sctp" };
const PAGE = 200;

const state = {
  view: "flows", where: "", host: "", grep: "", since: "", until: "", file: "",
  sort: "", desc: false, cols: DEFAULT_COLUMNS.slice(), flow: null,
};
let cursor = null;
let loadedIds = new Set();
let packetOffset = 0;

// ---------- URL <-> state ----------
function readUrl() {
  const q = new URLSearchParams(location.search);
  for (const k of FILTERS) state[k] = q.get(k) || "";
  state.view = q.get("view") === "files" ? "files" : "flows";
  state.sort = q.get("sort") || "";
  state.desc = q.get("desc") === "1";
  const cols = (q.get("cols") || "").split(",").filter((c) => ALL_COLUMNS.includes(c));
  state.cols = cols.length ? cols : DEFAULT_COLUMNS.slice();
  state.flow = q.get("flow") ? Number(q.get("flow")) : null;
}

// A share link's token stays in the URL, so that a copied link works for
// whoever it is sent to.
const TOKEN = new URLSearchParams(location.search).get("token");

function writeUrl() {
  const q = new URLSearchParams();
  if (TOKEN) q.set("token", TOKEN);
  for (const k of FILTERS) if (state[k]) q.set(k, state[k]);
  if (state.view !== "flows") q.set("view", state.view);
  if (state.sort) q.set("sort", state.sort);
  if (state.desc) q.set("desc", "1");
  if (state.cols.join() !== DEFAULT_COLUMNS.join()) q.set("cols", state.cols.join(","));
  if (state.flow !== null) q.set("flow", String(state.flow));
  const s = q.toString();
  history.replaceState(null, "", s ? "?" + s : location.pathname);
}

function filterQuery() {
  const q = new URLSearchParams();
  for (const k of FILTERS) if (state[k]) q.set(k, state[k]);
  return q;
}

// ---------- helpers ----------
async function api(path) {
  const r = await fetch(path, { credentials: "same-origin" });
  const text = await r.text();
  let body = null;
  try { body = JSON.parse(text); } catch (_) { body = null; }
  if (!r.ok) throw new Error((body && body.error) || (r.status + " " + r.statusText));
  return { body, headers: r.headers };
}

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(c ?? ""));
  return e;
}

function fmtNum(n) {
  if (n === null || n === undefined) return "";
  return Number(n).toLocaleString("en-US");
}

function fmtBytes(n) {
  if (n === null || n === undefined) return "";
  const u = ["B", "KB", "MB", "GB", "TB"];
  let i = 0, v = Number(n);
  while (v >= 1000 && i < u.length - 1) { v /= 1000; i++; }
  return (i ? v.toFixed(1) : v) + " " + u[i];
}

function fmtTime(ns) {
  if (ns === null || ns === undefined) return "";
  const ms = Math.floor(Number(ns) / 1e6);
  const frac = String(Math.floor((Number(ns) % 1e9) / 1e6)).padStart(3, "0");
  return new Date(ms).toISOString().slice(0, 19).replace("T", " ") + "." + frac;
}

function cell(col, v) {
  if (col === "proto") return PROTO[v] || (v ?? "");
  if (col.endsWith("_ts_ns") || col === "ts_ns") return fmtTime(v);
  if (col.startsWith("bytes") || col.startsWith("payload") || col.startsWith("missed")) return fmtBytes(v);
  if (/port|flow_id|file_id|vlan|ethertype|offset/.test(col)) return v ?? "";
  if (typeof v === "number") return fmtNum(v);
  return v ?? "";
}

const numeric = (col) => /^(packets|bytes|payload|missed|files|flows$|src_port|dst_port|flow_id|vlan|offset|caplen|orig_len)/.test(col);

function showError(e) {
  const box = $("error");
  if (!e) { box.hidden = true; return; }
  box.textContent = String(e.message || e);
  box.hidden = false;
}

// ---------- overview ----------
async function loadOverview() {
  const { body: s } = await api("/api/summary?top=8");
  $("index-name").textContent = s.index;
  const o = s.overview || {};
  const cards = [
    ["files", fmtNum(o.files)], ["packets", fmtNum(o.packets)], ["bytes", fmtBytes(o.capture_bytes)],
    ["flows", fmtNum(o.flows)], ["first packet", o.first_packet || ""],
    ["last packet", o.last_packet || ""],
  ];
  $("cards").replaceChildren(...cards.map(([k, v]) => el("div", { class: "card" }, el("b", {}, String(v)), el("span", {}, k))));
  list("protocols", s.protocols, "protocol", (r) => ({ where: "protocol = '" + r.protocol + "'" }));
  list("talkers", s.top_talkers, "address", (r) => ({ host: r.address }));
  list("services", s.top_services, "service", (r) => (r.service ? { where: "service = '" + r.service + "'" } : null));
  list("vendors", s.top_mac_vendors, "vendor", null);
  await loadChart();
}

function list(id, rows, key, filter) {
  const t = $(id);
  t.replaceChildren();
  for (const r of rows || []) {
    const f = filter && filter(r);
    const name = el("td", f ? { class: "link", title: "show these flows" } : {}, String(r[key] ?? "(none)"));
    if (f) name.addEventListener("click", () => applyFilter(f));
    const n = r.bytes !== undefined ? fmtBytes(r.bytes) : fmtNum(r.packets);
    t.append(el("tr", {}, name, el("td", { class: "num" }, n)));
  }
}

function applyFilter(f) {
  for (const k of FILTERS) state[k] = "";
  Object.assign(state, f);
  state.view = "flows";
  syncInputs();
  refreshFlows();
}

async function loadChart() {
  const metric = document.querySelector("input[name=metric]:checked").value;
  const { body } = await api("/api/timeline?buckets=120");
  const svg = $("chart");
  const w = svg.clientWidth || 800, h = 140;
  svg.setAttribute("viewBox", `0 0 ${w} ${h}`);
  svg.replaceChildren();
  const b = body.buckets || [];
  const max = Math.max(1, ...b.map((x) => x[metric]));
  const bw = w / Math.max(1, b.length);
  b.forEach((x) => {
    const bh = Math.max(x[metric] > 0 ? 1 : 0, (x[metric] / max) * (h - 4));
    const r = document.createElementNS("http://www.w3.org/2000/svg", "rect");
    r.setAttribute("x", String(bw * b.indexOf(x)));
    r.setAttribute("y", String(h - bh));
    r.setAttribute("width", String(Math.max(1, bw - 1)));
    r.setAttribute("height", String(bh));
    const t = document.createElementNS("http://www.w3.org/2000/svg", "title");
    t.textContent = fmtTime(x.start_ns) + ": " + (metric === "bytes" ? fmtBytes(x.bytes) : fmtNum(x.packets) + " packets");
    r.append(t);
    r.addEventListener("click", () => applyFilter({
      since: new Date(x.start_ns / 1e6).toISOString(),
      until: new Date((x.start_ns + body.bucket_ns) / 1e6).toISOString(),
    }));
    svg.append(r);
  });
  const axis = $("chart-axis");
  axis.replaceChildren();
  if (b.length) {
    axis.append(el("span", {}, fmtTime(b[0].start_ns)), el("span", {}, fmtTime(b[b.length - 1].start_ns + body.bucket_ns)));
  }
}

// ---------- flows ----------
function syncInputs() {
  for (const k of FILTERS) $("f-" + k).value = state[k];
}

function flowsQuery(after) {
  const q = filterQuery();
  q.set("limit", String(PAGE));
  if (state.sort) q.set("sort", state.sort);
  if (state.desc) q.set("desc", "1");
  if (after) q.set("after", after);
  return q;
}

function renderHead() {
  const tr = el("tr");
  for (const c of state.cols) {
    const th = el("th", { class: (numeric(c) ? "num " : "") + (state.sort === c ? "sorted" + (state.desc ? " desc" : "") : "") }, c.replace(/_ns$/, ""));
    th.addEventListener("click", () => {
      if (state.sort === c) state.desc = !state.desc; else { state.sort = c; state.desc = false; }
      refreshFlows();
    });
    tr.append(th);
  }
  $("flows").tHead.replaceChildren(tr);
}

// A layer-2 flow (ARP, LLDP...) has MACs and an EtherType, not IPs.
function shown(f, c) {
  if (c === "src_ip" && f.src_ip === null) return f.src_mac;
  if (c === "dst_ip" && f.dst_ip === null) return f.dst_mac;
  if (c === "proto" && f.proto === null) return "0x" + Number(f.ethertype).toString(16).padStart(4, "0");
  return f[c];
}

function flowRow(f, fresh) {
  const tr = el("tr", { "data-id": String(f.flow_id), class: (fresh ? "new " : "") + (state.flow === f.flow_id ? "selected" : "") });
  for (const c of state.cols) tr.append(el("td", numeric(c) ? { class: "num" } : {}, String(cell(c, shown(f, c)))));
  tr.addEventListener("click", () => openFlow(f.flow_id));
  return tr;
}

async function refreshFlows(live) {
  writeUrl();
  showError(null);
  renderHead();
  const dl = filterQuery();
  $("download-all").href = "/api/carve?" + dl.toString();
  $("download-all").hidden = !FILTERS.some((k) => state[k]);
  try {
    const [{ body: rows, headers }, { body: count }] = await Promise.all([
      api("/api/flows?" + flowsQuery().toString()),
      api("/api/flows/count?" + filterQuery().toString()),
    ]);
    const before = loadedIds;
    loadedIds = new Set(rows.map((r) => r.flow_id));
    $("flows").tBodies[0].replaceChildren(...rows.map((r) => flowRow(r, live && before.size && !before.has(r.flow_id))));
    cursor = headers.get("x-next-cursor");
    $("more").hidden = !cursor;
    $("flow-count").textContent = fmtNum(count.flows) + " flow" + (count.flows === 1 ? "" : "s") + (FILTERS.some((k) => state[k]) ? " match" : "");
  } catch (e) {
    showError(e);
    $("flows").tBodies[0].replaceChildren();
    $("flow-count").textContent = "";
    $("more").hidden = true;
  }
}

async function loadMore() {
  if (!cursor) return;
  const { body: rows, headers } = await api("/api/flows?" + flowsQuery(cursor).toString());
  for (const r of rows) loadedIds.add(r.flow_id);
  $("flows").tBodies[0].append(...rows.map((r) => flowRow(r, false)));
  cursor = headers.get("x-next-cursor");
  $("more").hidden = !cursor;
}

function renderColumnPicker() {
  const box = $("columns");
  box.replaceChildren(...ALL_COLUMNS.map((c) => {
    const cb = el("input", { type: "checkbox", value: c });
    cb.checked = state.cols.includes(c);
    cb.addEventListener("change", () => {
      state.cols = ALL_COLUMNS.filter((x) => (x === c ? cb.checked : state.cols.includes(x)));
      refreshFlows();
    });
    return el("label", {}, cb, " " + c);
  }));
}

// ---------- one flow ----------
async function openFlow(id) {
  state.flow = id;
  writeUrl();
  for (const tr of $("flows").tBodies[0].rows) tr.classList.toggle("selected", Number(tr.dataset.id) === id);
  packetOffset = 0;
  await loadDetail();
}

async function loadDetail() {
  if (state.flow === null) { $("detail").hidden = true; document.querySelector("main").classList.remove("with-detail"); return; }
  try {
    const { body: f } = await api("/api/flows/" + state.flow);
    $("detail").hidden = false;
    document.querySelector("main").classList.add("with-detail");
    $("detail-title").textContent = `Flow ${f.flow_id}: ${PROTO[f.proto] || f.proto || "l2"} ${f.src_ip ?? f.src_mac}${f.src_port !== null ? ":" + f.src_port : ""} → ${f.dst_ip ?? f.dst_mac}${f.dst_port !== null ? ":" + f.dst_port : ""}`;
    $("detail-download").href = "/api/carve?flow_id=" + f.flow_id;
    $("detail-download").setAttribute("download", "flow-" + f.flow_id + ".pcap");
    $("detail-brief").textContent = `${fmtNum(f.packets_fwd + f.packets_rev)} packets, ${fmtBytes(f.bytes_fwd + f.bytes_rev)}` +
      `${f.service ? ", " + f.service : ""}, ${fmtTime(f.first_ts_ns)} → ${fmtTime(f.last_ts_ns)}` +
      `${f.missed_fwd + f.missed_rev > 0 ? ", " + fmtBytes(f.missed_fwd + f.missed_rev) + " never captured" : ""}`;
    // MACs with their vendors (the IEEE registry built into pcapidx).
    const vendors = await api("/api/sql?q=" + encodeURIComponent(
      `SELECT mac_vendor(src_mac) AS src_mac, mac_vendor(dst_mac) AS dst_mac FROM flows WHERE flow_id = ${Number(f.flow_id)}`))
      .then(({ body }) => (body && body[0]) || {}).catch(() => ({}));
    const shown = (k, v) => k.endsWith("_ts_ns") ? fmtTime(v) + "  (" + v + ")"
      : (v !== null && vendors[k]) ? `${v}  (${vendors[k]})` : String(v ?? "");
    $("detail-fields").replaceChildren(...Object.entries(f).map(([k, v]) => el("tr", {}, el("td", {}, k), el("td", { class: "cell-" + k }, shown(k, v)))));
    await Promise.all([loadPackets(f.packets_fwd + f.packets_rev), loadStream()]);
  } catch (e) {
    showError(e);
  }
}

// The first 256 KB of the reassembled stream (a link opens all of it).
const STREAM_SHOWN = 256 * 1024;
async function loadStream() {
  const fmt = document.querySelector("input[name=sfmt]:checked").value;
  const q = new URLSearchParams({ format: fmt });
  if (TOKEN) q.set("token", TOKEN);
  const url = `/api/flows/${state.flow}/stream?` + q.toString();
  $("stream-open").href = url;
  const pre = $("stream");
  try {
    const r = await fetch(url, { credentials: "same-origin" });
    if (!r.ok) {
      const e = await r.json().catch(() => ({}));
      pre.textContent = e.error || (r.status + " " + r.statusText);
      return;
    }
    const reader = r.body.getReader();
    const dec = new TextDecoder();
    let text = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      text += dec.decode(value, { stream: true });
      if (text.length > STREAM_SHOWN) {
        reader.cancel();
        text = text.slice(0, STREAM_SHOWN) + "\n… (open whole to see the rest)";
        break;
      }
    }
    pre.textContent = text;
  } catch (e) {
    pre.textContent = String(e.message || e);
  }
}

async function loadPackets(total) {
  const { body: rows } = await api(`/api/flows/${state.flow}/packets?limit=500&offset=${packetOffset}`);
  const cols = ["ts_ns", "direction", "orig_len", "caplen", "path", "offset"];
  const t = $("packets");
  t.replaceChildren(el("tr", {}, ...cols.map((c) => el("th", numeric(c) ? { class: "num" } : {}, c.replace(/_ns$/, "")))),
    ...rows.map((r) => el("tr", {}, ...cols.map((c) => el("td", numeric(c) ? { class: "num" } : {}, String(c === "path" ? r.path.split("/").pop() : cell(c, r[c])))))));
  $("pk-range").textContent = rows.length ? `${fmtNum(packetOffset + 1)}–${fmtNum(packetOffset + rows.length)} of ${fmtNum(total)}` : "none";
  $("pk-prev").disabled = packetOffset === 0;
  $("pk-next").disabled = packetOffset + rows.length >= total;
  $("pk-prev").onclick = () => { packetOffset = Math.max(0, packetOffset - 500); loadPackets(total); };
  $("pk-next").onclick = () => { packetOffset += 500; loadPackets(total); };
}

// ---------- files ----------
async function loadFiles() {
  const { body: rows } = await api("/api/files");
  const cols = ["file_id", "path", "status", "format", "size", "packets", "flows", "first_ts_ns", "last_ts_ns", "error"];
  // A file's flow count opens the flows with a packet in it.
  const flowsOf = (r) => r.flows ? el("a", { href: "#", class: "file-flows", "data-file": String(r.file_id),
    onclick: (ev) => { ev.preventDefault(); showFileFlows(r.file_id); } }, fmtNum(r.flows)) : "0";
  const td = (c, r) => el("td", numeric(c) ? { class: "num" } : {},
    c === "flows" ? flowsOf(r) : String(c === "size" ? fmtBytes(r[c]) : cell(c, r[c])));
  $("files").replaceChildren(el("tr", {}, ...cols.map((c) => el("th", {}, c.replace(/_ns$/, "")))),
    ...rows.map((r) => el("tr", {}, ...cols.map((c) => td(c, r)))));
}

function showFileFlows(fileId) {
  for (const k of FILTERS) state[k] = "";
  state.file = String(fileId);
  state.view = "flows";
  state.flow = null;
  syncInputs();
  showView();
  Promise.all([refreshFlows(), loadDetail()]).catch(showError);
}

function showView() {
  const files = state.view === "files";
  $("files-view").hidden = !files;
  $("flows-view").hidden = files;
  $("tab-files").classList.toggle("active", files);
  $("tab-flows").classList.toggle("active", !files);
  writeUrl();
  if (files) loadFiles().catch(showError);
}

// ---------- live ----------
let pending = false;
function connect() {
  const es = new EventSource("/api/events");
  const live = $("live");
  es.addEventListener("open", () => { live.className = "live on"; live.textContent = "live"; });
  es.addEventListener("error", () => { live.className = "live off"; live.textContent = "reconnecting"; });
  let first = true;
  es.addEventListener("change", () => {
    // The first event only says the stream is up; a reconnect reloads all,
    // so nothing committed while away is missed.
    if (first && !pending) { first = false; return; }
    if (pending) return;
    pending = true;
    live.classList.add("pulse");
    setTimeout(async () => {
      pending = false;
      live.classList.remove("pulse");
      try {
        await Promise.all([loadOverview(), refreshFlows(true), state.flow !== null ? loadDetail() : null,
          state.view === "files" ? loadFiles() : null]);
      } catch (e) { showError(e); }
    }, 300);
  });
}

// ---------- start ----------
function start() {
  readUrl();
  syncInputs();
  renderColumnPicker();
  $("filters").addEventListener("submit", (e) => {
    e.preventDefault();
    for (const k of FILTERS) state[k] = $("f-" + k).value.trim();
    refreshFlows();
  });
  $("clear").addEventListener("click", () => { for (const k of FILTERS) state[k] = ""; syncInputs(); refreshFlows(); });
  $("more").addEventListener("click", () => loadMore().catch(showError));
  $("detail-close").addEventListener("click", () => { state.flow = null; writeUrl(); loadDetail(); });
  for (const t of document.querySelectorAll(".tab")) t.addEventListener("click", () => { state.view = t.dataset.view; showView(); });
  for (const r of document.querySelectorAll("input[name=metric]")) r.addEventListener("change", () => loadChart().catch(showError));
  for (const r of document.querySelectorAll("input[name=sfmt]")) r.addEventListener("change", () => loadStream());
  showView();
  loadOverview().catch(showError);
  refreshFlows();
  loadDetail();
  connect();
}

document.addEventListener("DOMContentLoaded", start);
