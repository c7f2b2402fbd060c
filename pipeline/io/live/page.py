"""The live view's HTML page (``/``): the annotated stream and the counts, and a tile per camera with its
latest frame, its state and its charts from the store (``chart.svg``); no external assets."""

# The page loads nothing from elsewhere (the policy enforces it) and renders names as text, never HTML.
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; img-src 'self'; connect-src 'self'; "
    "script-src 'unsafe-inline'; style-src 'unsafe-inline'",
}
PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>vpipe live</title>
<style>
body { font: 14px system-ui, sans-serif; margin: 1em; background: #111; color: #eee; }
#stream { display: block; max-width: 100%; min-height: 60px; margin: .5em 0; background: #000; }
table { border-collapse: collapse; margin: .3em 1em .8em 0; display: inline-table; vertical-align: top; }
th, td { padding: .15em .6em; text-align: right; border-bottom: 1px solid #333; }
th:first-child, td:first-child { text-align: left; }
h2 { font-size: 1em; margin: .6em 0 .2em; }
.muted { color: #999; }
nav a { color: #8ab4f8; margin-right: 1em; }
#cameras { display: flex; flex-wrap: wrap; gap: 1em; }
.camera { border-top: 1px solid #333; max-width: 740px; }
.camera .snapshot { display: block; width: 320px; min-height: 40px; background: #000; cursor: pointer; }
.camera .chart svg { max-width: 100%; height: auto; }
</style>
</head>
<body>
<!--links-->
<label>source <select id="source"></select></label> <span id="status" class="muted">waiting for frames</span>
<img id="stream" alt="annotated stream">
<div id="counts"></div>
<div id="cameras"></div>
<script>
"use strict";
const img = document.getElementById("stream");
const select = document.getElementById("source");
const countsBox = document.getElementById("counts");
const statusBox = document.getElementById("status");
let shown = null;  // the source in the <img>; null: the server's default (the first source)

function showStream(name) {
  shown = name;
  const query = name === null ? "" : "source=" + encodeURIComponent(name) + "&";
  img.src = "stream.mjpg?" + query + "t=" + Date.now();
}
img.onerror = () => setTimeout(() => showStream(shown), 1000);  // server restarting: retry
select.onchange = () => showStream(select.value);

function table(headers, rows) {
  const t = document.createElement("table");
  for (const [i, cells] of [headers, ...rows].entries()) {
    const tr = t.insertRow();
    for (const text of cells) {
      const cell = document.createElement(i === 0 ? "th" : "td");
      cell.textContent = text;
      tr.appendChild(cell);
    }
  }
  return t;
}

// A table per kind of count (line, zone, movement, crosswalk, parking) in the order the server lists
// them, a row per item and a column per part (in, out; "count" for an item's only column). The kinds
// come from the server (source.columns), never from the names, which are the user's: a crosswalk
// named "x_count" is no zone. A column the server did not describe goes to the last table.
function sourceBlock(name, source) {
  const tables = new Map(), other = [];
  const columns = source.columns || {};
  for (const [key, value] of Object.entries(source.counts)) {
    const column = Object.hasOwn(columns, key) ? columns[key] : null;
    if (column === null) { other.push([key, value]); continue; }
    if (!tables.has(column.kind)) tables.set(column.kind, {parts: [], rows: new Map()});
    const kind = tables.get(column.kind), part = column.part || "count";
    if (!kind.parts.includes(part)) kind.parts.push(part);
    if (!kind.rows.has(column.name)) kind.rows.set(column.name, new Map());
    kind.rows.get(column.name).set(part, value);
  }
  const block = document.createElement("section");
  const title = document.createElement("h2");
  title.textContent = name + "  \\u00b7  frame " + source.frame_index + " at " + source.timestamp_s.toFixed(2) + " s";
  block.appendChild(title);
  for (const [kind, {parts, rows}] of tables) {
    const cells = [...rows].map(([item, values]) => [item, ...parts.map(p => values.has(p) ? values.get(p) : "")]);
    const t = table([kind, ...parts], cells);
    t.dataset.kind = kind;
    block.appendChild(t);
  }
  if (other.length) block.appendChild(table(["", ""], other));
  return block;
}

function render(data) {
  const names = Object.keys(data.sources);
  if ([...select.options].map(o => o.value).join("\\n") !== names.join("\\n")) {
    select.replaceChildren(...names.map(n => new Option(n, n)));
    select.value = shown === null ? names[0] : shown;
  }
  select.parentElement.hidden = names.length < 2;
  countsBox.replaceChildren(...names.map(n => sourceBlock(n, data.sources[n])));
  statusBox.textContent = names.length ? "" : "waiting for frames";
}

async function poll() {
  try {
    const response = await fetch("counts", {cache: "no-store"});
    if (response.ok) render(await response.json());
  } catch (error) {
    statusBox.textContent = "disconnected, retrying";
  }
  setTimeout(poll, 500);
}

// A tile per camera: its latest frame (one JPEG a second, no stream held open), its state, its charts.
const tilesBox = document.getElementById("cameras");
const tiles = new Map();
const pageQuery = new URLSearchParams(location.search);  // ?hours=H&interval=I go to the charts
const chartQuery = ["hours", "interval"].filter(k => pageQuery.has(k))
  .map(k => "&" + k + "=" + encodeURIComponent(pageQuery.get(k))).join("");

function tileOf(name) {
  if (!tiles.has(name)) {
    const section = document.createElement("section");
    section.className = "camera";
    section.dataset.source = name;
    const title = document.createElement("h2");
    title.textContent = name;
    const state = document.createElement("div");
    state.className = "state muted";
    const snapshot = document.createElement("img");
    snapshot.className = "snapshot";
    snapshot.alt = name;
    snapshot.onclick = () => { select.value = name; showStream(name); };
    const chart = document.createElement("div");
    chart.className = "chart";
    section.append(title, state, snapshot, chart);
    tilesBox.appendChild(section);
    tiles.set(name, {state, snapshot, chart, frames: -1});
  }
  return tiles.get(name);
}

async function pollHealth() {
  try {
    const response = await fetch("health", {cache: "no-store"});
    const health = await response.json();
    for (const [name, source] of Object.entries(health.sources)) {
      const tile = tileOf(name);
      tile.state.textContent = source.ended ? "ended: " + source.ended
        : "last frame " + source.last_frame_age_s.toFixed(1) + " s ago, " + source.frames + " frames";
      if (source.frames !== tile.frames) {
        tile.frames = source.frames;
        tile.snapshot.src = "snapshot.jpg?source=" + encodeURIComponent(name) + "&n=" + source.frames;
      }
    }
  } catch (error) { /* shown by the counts poll */ }
  setTimeout(pollHealth, 1000);
}

async function pollCharts() {
  for (const [name, tile] of tiles) {
    try {
      const response = await fetch("chart.svg?source=" + encodeURIComponent(name) + chartQuery, {cache: "no-store"});
      if (response.ok) tile.chart.innerHTML = await response.text();  // the server escapes every name in it
      else tile.chart.textContent = (await response.json()).error;
    } catch (error) { /* retried */ }
  }
  setTimeout(pollCharts, tiles.size ? 5000 : 1000);
}

// Started after "load": an endless MJPEG response must not keep the page loading.
window.addEventListener("load", () => { showStream(null); poll(); pollHealth(); pollCharts(); });
</script>
</body>
</html>
"""
