// The fs-bus console: one page, three views (#/functions, #/functions/NAME, #/nodes),
// redrawn from the `state` server-sent event that the server sends at every tick.
"use strict";

const state = { data: null, route: [], logs: null, logLines: [], logName: null, busy: false };

// --- small DOM helpers ---

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") el.className = v;
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

const fmtNum = (n) => (n === null || n === undefined ? "—" : Number(n).toLocaleString("en-US"));
const fmtRate = (n) => (n === null || n === undefined ? "—" : `${Number(n).toFixed(n < 10 ? 1 : 0)}/s`);
const fmtTime = (ms) => (ms ? new Date(ms).toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z") : "—");
const badge = (text, extra) => h("span", { class: `badge ${text} ${extra || ""}` }, text);

function ago(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  return s < 60 ? `${s} s ago` : `${Math.round(s / 60)} min ago`;
}

function announce(text) {
  const el = document.getElementById("announce");
  el.textContent = "";
  setTimeout(() => { el.textContent = text; }, 50);
}

// A sparkline: throughput (solid) and lag (dashed), each scaled to its own maximum.
function sparkline(spark, label) {
  const w = 160, hgt = 32, ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("class", "spark");
  svg.setAttribute("width", w);
  svg.setAttribute("height", hgt);
  svg.setAttribute("viewBox", `0 0 ${w} ${hgt}`);
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", label);
  for (const [series, cls] of [[spark.lag || [], "lag"], [spark.in_per_s || [], "in"]]) {
    if (series.length < 2) continue;
    const max = Math.max(...series, 1);
    const pts = series.map((v, i) => `${(i * (w - 2)) / (series.length - 1) + 1},${hgt - 2 - (v / max) * (hgt - 4)}`);
    const line = document.createElementNS(ns, "polyline");
    line.setAttribute("class", cls);
    line.setAttribute("points", pts.join(" "));
    svg.append(line);
  }
  return svg;
}

// YAML, lightly highlighted: keys, strings, numbers and comments, line by line.
function yaml(text) {
  const code = h("code", { class: "yaml" });
  for (const line of text.split("\n")) {
    const m = line.match(/^(\s*-?\s*)([^:#'"]+?)(:)(\s*)(.*)$/);
    const rest = m ? m[5] : line;
    if (m) code.append(m[1], h("span", { class: "k" }, m[2]), m[3], m[4]);
    const c = rest.match(/^(.*?)(\s#.*|^#.*)$/);
    const value = c ? c[1] : rest;
    if (/^\s*(".*"|'.*')\s*$/.test(value)) code.append(h("span", { class: "s" }, value));
    else if (/^\s*-?\d+(\.\d+)?\s*$/.test(value)) code.append(h("span", { class: "n" }, value));
    else code.append(value);
    if (c) code.append(h("span", { class: "c" }, c[2]));
    code.append("\n");
  }
  return h("pre", { tabindex: "0", "aria-label": "configuration (YAML)" }, code);
}

function placement(nodes) {
  const entries = Object.entries(nodes || {});
  if (!entries.length) return h("span", { class: "muted" }, "—");
  return h("ul", { class: "plain" }, entries.map(([node, parts]) =>
    h("li", {}, h("strong", {}, node), " → ", parts.join(", "))));
}

// --- views ---

function functionsView(d) {
  const rows = d.functions.map((f) => h("tr", { "data-function": f.name },
    h("th", { scope: "row" }, h("a", { href: `#/functions/${encodeURIComponent(f.name)}` }, f.name)),
    h("td", {}, f.type),
    h("td", { class: "status" }, badge(f.status), f.desired !== f.status ? h("span", { class: "muted" }, ` wants ${f.desired}`) : null),
    h("td", { class: "num" }, f.code_revision),
    h("td", { class: "placement" }, placement(f.nodes)),
    h("td", { class: "num lag" }, fmtNum(f.lag)),
    h("td", { class: "num records-in" }, fmtNum(f.records_in)),
    h("td", { class: "num in-rate" }, fmtRate(f.in_per_s)),
    h("td", { class: "num out-rate" }, fmtRate(f.out_per_s)),
    h("td", { class: "num err-rate" }, fmtRate(f.errors_per_s)),
    h("td", {}, sparkline(f.spark, `${f.name}: records in per second and lag, last minutes; now ${fmtRate(f.in_per_s)}, lag ${fmtNum(f.lag)}`)),
    h("td", { class: "error" }, f.error || "")));
  const table = h("table", { id: "functions" },
    h("caption", {}, `${d.functions.length} function(s) in namespace ${d.namespace}; rates over the last 10 s`),
    h("thead", {}, h("tr", {}, ["Function", "Type", "Status", "Rev.", "Runs on (node → partitions)", "Lag",
      "Records in", "In/s", "Out/s", "Errors/s", "Throughput and lag", "Last error"]
      .map((t, i) => h("th", { scope: "col", class: [3, 5, 6, 7, 8, 9].includes(i) ? "num" : null }, t)))),
    h("tbody", {}, rows.length ? rows : h("tr", {}, h("td", { colspan: 12, class: "muted" },
      "No functions yet. Create one with fs-bus sql, the Python client, or the form below (--allow-writes)."))));
  // The form is built once and moved between redraws: a chosen file cannot be put back into a new input.
  if (d.allow_writes && !state.createForm) state.createForm = createForm();
  return [h("h1", {}, "Functions"), table, d.allow_writes ? state.createForm : null];
}

function createForm() {
  const out = h("p", { class: "message", role: "status" });
  const file = h("input", { type: "file", id: "create-artifact", accept: ".wasm,.py", required: true });
  const cls = h("input", { type: "text", id: "create-class", placeholder: "only for a .py module, e.g. Printer" });
  const config = h("textarea", { id: "create-config", spellcheck: "false", required: true });
  const submit = async () => {
    if (!file.files.length) { out.textContent = "Choose a .wasm component or a .py module first."; return; }
    const f = file.files[0];
    const bytes = new Uint8Array(await f.arrayBuffer());
    let bin = "";
    for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
    const body = { config: config.value, artifact_base64: btoa(bin), filename: f.name, class_name: cls.value || null };
    await write("POST", "/api/functions", body, out);
  };
  return h("fieldset", { id: "create" }, h("legend", {}, "Create a function"),
    h("label", { for: "create-artifact" }, "Artifact (.wasm component or .py module)"), file,
    h("label", { for: "create-class" }, "Driver class (Python only)"), cls,
    h("label", { for: "create-config" }, "Config (YAML)"), config,
    h("div", { class: "actions" }, h("button", { type: "button", id: "create-submit", onclick: submit }, "Create")), out);
}

function functionView(d, name) {
  const f = (d.details || {})[name];
  if (!f) return [h("h1", {}, name), h("p", {}, "This function does not exist (or not any more). ",
    h("a", { href: "#/functions" }, "All functions"))];
  const out = h("p", { class: "message", role: "status", id: "action-message" });
  const actions = d.allow_writes ? h("div", { class: "actions" },
    ["stop", "start", "drop"].map((a) => h("button", {
      type: "button", id: `action-${a}`, class: a === "drop" ? "danger" : null,
      onclick: () => confirmThen(`${a.toUpperCase()} FUNCTION ${name}?`,
        a === "drop" ? "The function, its artifact (if no other uses it) and its state are deleted." :
          `Every node will ${a} it; this waits until they confirm.`,
        () => write("POST", `/api/functions/${encodeURIComponent(name)}/${a}`, {}, out)),
    }, a.toUpperCase()))) : null;
  const a = f.artifact;
  return [
    h("p", {}, h("a", { href: "#/functions" }, "← All functions")),
    h("h1", {}, "Function ", h("code", {}, name), " ", h("span", { id: "function-status" }, badge(f.status))),
    actions, out,
    h("dl", { class: "grid" }, [
      ["Type", f.type], ["Desired", f.desired], ["Observed", f.status], ["Code revision", f.code_revision],
      ["Control revision", f.revision],
      ["State generation", f.state_generation], ["Lag", fmtNum(f.lag)], ["Records in", fmtNum(f.records_in)],
      ["Records out", fmtNum(f.records_out)], ["In/s", fmtRate(f.in_per_s)], ["Out/s", fmtRate(f.out_per_s)],
      ["Updated", `${fmtTime(f.updated_at)} by ${f.updated_by || "—"}`], ["Last error", f.error || "—"],
    ].map(([k, v]) => h("div", {}, h("dt", {}, k), h("dd", {}, v)))),
    h("h2", {}, "Throughput and lag"),
    sparkline(f.spark, `${name}: records in per second (solid) and lag (dashed) over the last minutes`),
    h("p", { class: "muted" }, h("span", { class: "legend-in" }, "— records in/s"), "  ",
      h("span", { class: "legend-lag" }, "- - lag")),
    h("h2", {}, "Partitions"),
    h("table", { id: "partitions" }, h("caption", {}, "The function's consumer group on each input partition"),
      h("thead", {}, h("tr", {}, ["Topic", "Partition", "Node", "Committed", "End", "Lag"].map((t, i) =>
        h("th", { scope: "col", class: i >= 3 ? "num" : null }, t)))),
      h("tbody", {}, f.partitions.map((p) => h("tr", {},
        h("td", {}, p.topic), h("td", {}, p.partition), h("td", {}, p.node || "—"),
        h("td", { class: "num" }, fmtNum(p.committed)), h("td", { class: "num" }, fmtNum(p.end)),
        h("td", { class: "num" }, fmtNum(p.lag)))))),
    h("h2", {}, "Log lines ", h("span", { class: "muted" }, "(live, from the logs topic)")),
    logList(name),
    h("h2", {}, "Nodes"),
    h("table", {}, h("thead", {}, h("tr", {}, ["Node", "State", "Code revision", "Partitions", "Errors", "Last error"].map((t) =>
      h("th", { scope: "col" }, t)))),
      h("tbody", {}, f.node_reports.map((r) => h("tr", {}, h("td", {}, r.node, r.alive ? "" : " (dead)"),
        h("td", {}, badge(r.state)), h("td", {}, r.code_revision || "—"), h("td", {}, r.partitions.join(", ")),
        h("td", { class: "num" }, fmtNum(r.errors)), h("td", { class: "error" }, r.error || ""))))),
    h("h2", {}, "Config"), yaml(f.config_yaml),
    h("h2", {}, "Artifact"),
    h("dl", { class: "grid", id: "artifact" }, [["sha256", h("code", {}, a.sha256)], ["Size", `${fmtNum(a.size)} bytes`],
      ["Kind", a.kind], ["Signed by", a.signed_by || "not signed"]].map(([k, v]) => h("div", {}, h("dt", {}, k), h("dd", {}, v)))),
    h("h2", {}, "Revisions"),
    h("table", { id: "revisions" }, h("caption", {}, "The function's code revisions (kept under their own keys: compaction keeps them)"),
      h("thead", {}, h("tr", {}, ["Revision", "When", "By", "Artifact", "Config", "What changed"].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, f.revisions.map((r) => h("tr", { class: r.running ? "current" : null },
        h("td", {}, r.code_revision, r.running ? " (live)" : ""), h("td", {}, fmtTime(r.created_at)), h("td", {}, r.created_by || "—"),
        h("td", {}, h("code", { title: r.artifact_sha256 }, r.artifact_sha256.slice(0, 12))),
        h("td", {}, h("code", { title: r.config_digest }, r.config_digest.slice(0, 12))),
        h("td", {}, r.changes, r.reason ? h("span", { class: "muted" }, ` (${r.reason})`) : null))))),
    h("h2", {}, "Control records"),
    h("table", { id: "history" }, h("caption", {}, "Records of this function on the control topic (the topic is compacted: older ones may be gone)"),
      h("thead", {}, h("tr", {}, ["Revision", "Desired", "When", "By", "Offset"].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, [...f.history].reverse().map((r) => h("tr", {}, h("td", {}, r.revision), h("td", {}, badge(r.desired)),
        h("td", {}, fmtTime(r.updated_at)), h("td", {}, r.updated_by || "—"), h("td", {}, r.offset))))),
  ];
}

function labelList(labels) {
  const entries = Object.entries(labels || {});
  if (!entries.length) return h("span", { class: "muted" }, "—");
  return h("ul", { class: "plain" }, entries.map(([k, v]) => h("li", {}, h("code", {}, v ? `${k}=${v}` : k))));
}

function fmtBytes(n) {
  if (n === null || n === undefined) return "—";
  const units = ["B", "KiB", "MiB", "GiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i += 1; }
  return `${i ? n.toFixed(1) : n} ${units[i]}`;
}

function nodesView(d) {
  const rows = d.nodes.map((n) => h("tr", { "data-node": n.node_id },
    h("th", { scope: "row" }, n.node_id),
    h("td", {}, badge(n.alive ? "alive" : "dead")),
    h("td", {}, `${n.host} (pid ${n.pid})`), h("td", {}, n.version),
    h("td", {}, `${ago(n.heartbeat_age_ms)} (every ${n.interval_ms / 1000} s)`),
    h("td", {}, fmtTime(n.started_at)),
    h("td", { class: "labels" }, labelList(n.labels)),
    h("td", { class: "num memory" }, fmtBytes(n.rss_bytes)), h("td", { class: "num" }, fmtNum(n.threads)),
    h("td", { class: "num" }, n.instances), h("td", { class: "num" }, n.partitions),
    h("td", {}, n.functions.length ? h("ul", { class: "plain" }, n.functions.map((f) => h("li", {},
      h("a", { href: `#/functions/${encodeURIComponent(f.name)}` }, f.name), " ", badge(f.state),
      f.partitions.length ? ` ${f.partitions.join(", ")}` : ""))) : h("span", { class: "muted" }, "—"))));
  return [h("h1", {}, "Nodes"), h("table", { id: "nodes" },
    h("caption", {}, `${d.nodes.filter((n) => n.alive).length} live node(s); heartbeats from the status topic`),
    h("thead", {}, h("tr", {}, ["Node", "", "Host", "Version", "Last heartbeat", "Started", "Labels", "Memory",
      "Threads", "Instances", "Partitions", "Functions (state, partitions held)"].map((t, i) =>
      h("th", { scope: "col", class: i >= 7 && i <= 10 ? "num" : null }, i === 1 ? h("span", { class: "visually-hidden" }, "Alive") : t)))),
    h("tbody", {}, rows.length ? rows : h("tr", {}, h("td", { colspan: 12, class: "muted" },
      "No node has reported. Start one with fs-bus node (or fs-bus local up)."))))];
}

// --- logs: one event stream while a function's page is open ---

function logList(name) {
  if (state.logName !== name) openLogs(name);
  const list = h("ol", { class: "logs", id: "logs", role: "log", "aria-label": `log lines of ${name}`, tabindex: "0" },
    state.logLines.map(logItem));
  if (!state.logLines.length) list.append(h("li", { class: "muted" }, state.logProblem || "No lines in the last hour yet."));
  return list;
}

function logItem(l) {
  const where = l.partition >= 0 ? `${l.topic}:${l.partition}` : l.topic || "-";
  return h("li", { class: l.stream }, h("span", { class: "muted" }, `${l.time} ${l.node} ${where} ${l.stream}: `),
    h("span", { class: "text" }, l.line));
}

function openLogs(name) {
  closeLogs();
  state.logName = name;
  state.logLines = [];
  state.logProblem = null;
  const es = new EventSource(`/api/functions/${encodeURIComponent(name)}/logs?since=1h&n=200`);
  es.addEventListener("line", (e) => {
    state.logLines.push(JSON.parse(e.data));
    if (state.logLines.length > 500) state.logLines.shift();
    const list = document.getElementById("logs");
    if (list) {
      if (state.logLines.length === 1) list.textContent = "";
      const stick = list.scrollTop + list.clientHeight >= list.scrollHeight - 4;
      list.append(logItem(state.logLines[state.logLines.length - 1]));
      if (list.children.length > 500) list.firstChild.remove();
      if (stick) list.scrollTop = list.scrollHeight;
    }
  });
  es.addEventListener("problem", (e) => { state.logProblem = JSON.parse(e.data).error; });
  state.logs = es;
}

function closeLogs() {
  if (state.logs) state.logs.close();
  state.logs = null;
  state.logName = null;
}

// --- writes ---

function confirmThen(title, text, action) {
  const dialog = document.getElementById("confirm");
  document.getElementById("confirm-title").textContent = title;
  document.getElementById("confirm-text").textContent = text;
  const ok = document.getElementById("confirm-ok");
  const cancel = document.getElementById("confirm-cancel");
  const opener = document.activeElement;
  const done = (go) => {
    ok.onclick = cancel.onclick = null;
    dialog.close();
    if (opener && opener.focus) opener.focus();
    if (go) action();
  };
  ok.onclick = () => done(true);
  cancel.onclick = () => done(false);
  dialog.oncancel = () => done(false);  // Escape
  dialog.showModal();
  cancel.focus();
}

async function write(method, url, body, out) {
  state.busy = true;
  out.textContent = "Working… (waiting for the nodes to confirm)";
  document.querySelectorAll(".actions button").forEach((b) => { b.disabled = true; });
  try {
    const r = await fetch(url, { method, headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
    const doc = await r.json();
    state.lastMessage = doc.ok ? doc.message : `Refused (${r.status}): ${doc.error}`;
  } catch (e) {
    state.lastMessage = `Failed: ${e}`;
  } finally {
    state.busy = false;
    render();
    const msg = document.querySelector(".message");
    if (msg) msg.textContent = state.lastMessage;
    announce(state.lastMessage);
    state.lastMessage = null;
  }
}

// --- routing and drawing ---

function route() {
  const parts = (location.hash || "#/functions").slice(2).split("/").map(decodeURIComponent);
  state.route = parts[0] ? parts : ["functions"];
  if (!(state.route[0] === "functions" && state.route[1])) closeLogs();
  for (const id of ["functions", "nodes"]) {
    const a = document.getElementById(`nav-${id}`);
    if (state.route[0] === id) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
  }
  render();
}

function render() {
  const d = state.data;
  if (!d || state.busy) return;
  document.getElementById("namespace").textContent = `namespace ${d.namespace}`;
  const mode = document.getElementById("mode");
  mode.textContent = d.allow_writes ? "writes allowed" : "read-only";
  mode.className = `badge ${d.allow_writes ? "writes" : ""}`;
  document.getElementById("live").textContent = d.at_ms ? `updated ${fmtTime(d.at_ms)}` : "";
  const banner = document.getElementById("banner");
  banner.hidden = !d.error;
  banner.textContent = d.error ? `Kafka: ${d.error}` : "";
  const [page, name] = state.route;
  const main = document.getElementById("main");
  // Redraws must not steal the keyboard user's place: remember the focused control by id or link.
  const active = document.activeElement;
  const key = active && main.contains(active) ? (active.id || active.getAttribute("href")) : null;
  const logs = document.getElementById("logs");
  const logScroll = logs ? logs.scrollTop : null;
  const view = page === "nodes" ? nodesView(d) : name ? functionView(d, name) : functionsView(d);
  main.replaceChildren(...view.flat().filter(Boolean));
  const newLogs = document.getElementById("logs");
  if (newLogs && logScroll !== null) newLogs.scrollTop = logScroll;
  if (key) {
    const again = document.getElementById(key) || main.querySelector(`[href="${CSS.escape(key)}"]`);
    if (again) again.focus();
  }
  document.title = name ? `${name} · fs-bus console` : `${page === "nodes" ? "Nodes" : "Functions"} · fs-bus console`;
}

function theme(next) {
  const root = document.documentElement;
  root.dataset.theme = next;
  localStorage.setItem("fs-bus-console-theme", next);
  const b = document.getElementById("theme-toggle");
  b.textContent = next === "dark" ? "Light theme" : "Dark theme";
  b.setAttribute("aria-pressed", String(next === "dark"));
}

function connect() {
  const es = new EventSource("/api/events");
  es.addEventListener("state", (e) => {
    state.data = JSON.parse(e.data);
    render();
  });
  es.onerror = () => {
    const banner = document.getElementById("banner");
    banner.hidden = false;
    banner.textContent = "Lost the console server; reconnecting…";
  };
}

document.addEventListener("DOMContentLoaded", () => {
  const saved = localStorage.getItem("fs-bus-console-theme");
  theme(saved || (matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light"));
  document.getElementById("theme-toggle").addEventListener("click", () =>
    theme(document.documentElement.dataset.theme === "dark" ? "light" : "dark"));
  window.addEventListener("hashchange", route);
  route();
  connect();
});
