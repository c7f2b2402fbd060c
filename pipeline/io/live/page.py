"""The live view's HTML page (``/``): the annotated stream and the counts, no external assets."""

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
</style>
</head>
<body>
<!--links-->
<label>source <select id="source"></select></label> <span id="status" class="muted">waiting for frames</span>
<img id="stream" alt="annotated stream">
<div id="counts"></div>
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

function sourceBlock(name, source) {
  const lines = new Map(), zones = [], other = [];
  for (const [key, value] of Object.entries(source.counts)) {
    let m;
    if ((m = key.match(/^(.+)_(in|out)$/))) {
      if (!lines.has(m[1])) lines.set(m[1], {in: "", out: ""});
      lines.get(m[1])[m[2]] = value;
    } else if ((m = key.match(/^(.+)_count$/))) zones.push([m[1], value]);
    else other.push([key, value]);
  }
  const block = document.createElement("section");
  const title = document.createElement("h2");
  title.textContent = name + "  \\u00b7  frame " + source.frame_index + " at " + source.timestamp_s.toFixed(2) + " s";
  block.appendChild(title);
  if (lines.size) block.appendChild(table(["line", "in", "out"], [...lines].map(([n, v]) => [n, v.in, v.out])));
  if (zones.length) block.appendChild(table(["zone", "count"], zones));
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

// Started after "load": an endless MJPEG response must not keep the page loading.
window.addEventListener("load", () => { showStream(null); poll(); });
</script>
</body>
</html>
"""
