// The vpipe config editor: lines (with lanes), zones, parking bays, movement approaches (polygon and/or
// gate) and crosswalks (line or polygon) drawn on a frame of the source.
// Everything is kept in source pixels; the server converts to the file's unit when saving.
"use strict";

const $ = (id) => document.getElementById(id);
const svg = $("overlay"), img = $("frame"), statusBox = $("status");
const SVG_NS = "http://www.w3.org/2000/svg";
const KINDS = {lines: "line", zones: "zone", slots: "bay", approaches: "approach", crosswalks: "crosswalk"};
// The point lists of approaches and crosswalks: each may be null (an approach with a gate only, say).
const POINT_LISTS = ["polygon", "gate", "line"];
const HINTS = {
  select: "Drag a corner or an end to move it; click a shape to select it.",
  line: "Click the start, then the end. \"in\" is the side the arrow points to.",
  lane: "Select a line, then click the start and the end of a lane on it.",
  zone: "Click the corners, then Finish (or Enter).",
  slot: "Click the bay's corners, then Finish (or Enter).",
  grid: "Click the 4 corners of the row in order (the first two along the row): it is split into rows x cols bays.",
  approach: "Click the approach's corners, then Finish (or Enter).",
  gate: "Click the gate's two ends, the intersection on the right going from the first to the second. "
    + "With an approach selected, the gate is its own; else a new approach with a gate only.",
  "walk-line": "Click the two ends of a line across the crosswalk.",
  "walk-area": "Click the crosswalk's corners, then Finish (or Enter).",
};

let doc = null;         // {width, height, coordinates, lines, zones, slots, approaches, crosswalks, file_slots}
let tool = "select";
let draft = [];         // points placed with the current tool
let pointer = null;     // the mouse position, for the draft's rubber band
let selection = null;   // {kind: one of KINDS, index, lane: index|null}
let dragging = null;    // while a point is dragged: the function that moves it
let modified = false;
let shownIndex = 0;     // the frame the page shows
let detections = [];    // the preview's detections on that frame: {class_name, confidence, box, anchor}

function say(text, kind) {
  statusBox.textContent = text;
  statusBox.className = kind || "";
}

function toPixels(event) {
  const point = svg.createSVGPoint();
  point.x = event.clientX;
  point.y = event.clientY;
  const p = point.matrixTransform(svg.getScreenCTM().inverse());
  // Whole source pixels, inside the frame: finer than a pixel means nothing on the image.
  return [Math.min(doc.width, Math.max(0, Math.round(p.x))), Math.min(doc.height, Math.max(0, Math.round(p.y)))];
}

function uniqueName(prefix, items) {
  const names = new Set(items.map((item) => item.name));
  let i = 1;
  while (names.has(prefix + i)) i++;
  return prefix + i;
}

function selected() {
  if (selection === null) return null;
  const item = doc[selection.kind][selection.index];
  return selection.lane === null ? item : item.lanes[selection.lane];
}

function select(kind, index, lane = null) {
  selection = kind === null ? null : {kind, index, lane};
  render();
}

function changed() {
  modified = true;
  render();
}

// -- drawing -----------------------------------------------------------------------------------

function el(name, attributes, parent = svg) {
  const node = document.createElementNS(SVG_NS, name);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
  parent.appendChild(node);
  return node;
}

function label(text, [x, y], cls) {
  el("text", {x, y, class: "label " + cls}).textContent = text;
}

// A draggable point at [cx, cy]; set(point) moves it.
function handle([cx, cy], set, cls) {
  const node = el("circle", {cx, cy, r: handleRadius(), class: "handle " + cls});
  node.addEventListener("pointerdown", (event) => {
    if (tool !== "select") return;
    event.stopPropagation();
    dragging = set;
    svg.setPointerCapture(event.pointerId);
  });
}

function handleRadius() {
  const scale = svg.getBoundingClientRect().width / doc.width || 1;
  return 6 / scale;  // 6 screen pixels whatever the zoom
}

function shape(name, attributes, kind, index, lane = null) {
  const node = el(name, attributes);
  node.addEventListener("pointerdown", (event) => {
    if (tool !== "select") return;
    event.stopPropagation();
    select(kind, index, lane);
  });
}

function isSelected(kind, index, lane = null) {
  return selection !== null && selection.kind === kind && selection.index === index && selection.lane === lane;
}

function render() {
  if (doc === null) return;
  svg.replaceChildren();
  const arrow = Math.max(12, doc.width / 30);
  if ($("show-detections").checked) renderDetections();
  for (const item of doc.file_slots) {
    el("polygon", {points: item.polygon.join(" "), class: "file-slot"});
    label(item.name, centroid(item.polygon), "file-slot");
  }
  doc.zones.forEach((zone, i) => polygon("zones", zone, i, "zone"));
  doc.slots.forEach((slot, i) => polygon("slots", slot, i, "slot"));
  doc.approaches.forEach((approach, i) => renderApproach(approach, i, arrow));
  doc.crosswalks.forEach((walk, i) => {
    if (walk.polygon) return polygon("crosswalks", walk, i, "crosswalk");
    if (!walk.line) return;
    const [[x1, y1], [x2, y2]] = walk.line, cls = "crosswalk" + (isSelected("crosswalks", i) ? " selected" : "");
    shape("line", {x1, y1, x2, y2, class: cls}, "crosswalks", i);
    label(walk.name, [x1, y1 - 8], "crosswalk");
  });
  doc.lines.forEach((line, i) => {
    const cls = "line" + (isSelected("lines", i) ? " selected" : "");
    shape("line", {x1: line.start[0], y1: line.start[1], x2: line.end[0], y2: line.end[1], class: cls}, "lines", i);
    el("path", {d: inArrowPath(line.start, line.end, arrow), class: "arrow"});
    const [nx, ny] = inNormal(line.start, line.end), [mx, my] = centroid([line.start, line.end]);
    label("in", [mx + nx * arrow * 1.4, my + ny * arrow * 1.4], "arrow");
    label(line.name, [line.start[0], line.start[1] - 8], "line");
    line.lanes.forEach((lane, j) => {
      const laneCls = "lane" + (isSelected("lines", i, j) ? " selected" : "");
      const points = {x1: lane.start[0], y1: lane.start[1], x2: lane.end[0], y2: lane.end[1], class: laneCls};
      shape("line", points, "lines", i, j);
      label(lane.name, centroid([lane.start, lane.end]), "lane");
    });
  });
  // Handles last, on top of every shape.
  for (const line of doc.lines) {
    for (const segment of [line, ...line.lanes]) {
      const cls = segment === line ? "line" : "lane";
      handle(segment.start, (point) => (segment.start = point), cls);
      handle(segment.end, (point) => (segment.end = point), cls);
    }
  }
  for (const item of [...doc.zones, ...doc.slots]) {
    item.polygon.forEach((corner, k) => handle(corner, (point) => (item.polygon[k] = point), "corner"));
  }
  for (const item of [...doc.approaches, ...doc.crosswalks]) {
    for (const key of POINT_LISTS) {
      (item[key] || []).forEach((corner, k) => handle(corner, (point) => (item[key][k] = point), "corner"));
    }
  }
  renderDraft();
  renderPanel();
}

// An approach: its polygon, its gate with an arrow to the "in" side (toward the intersection, on the right).
function renderApproach(approach, index, arrow) {
  if (approach.polygon) polygon("approaches", approach, index, "approach");
  if (!approach.gate) return;
  const [start, end] = approach.gate, cls = "gate" + (isSelected("approaches", index) ? " selected" : "");
  shape("line", {x1: start[0], y1: start[1], x2: end[0], y2: end[1], class: cls}, "approaches", index);
  el("path", {d: inArrowPath(start, end, arrow), class: "gate-arrow"});
  if (!approach.polygon) {
    const [nx, ny] = inNormal(start, end), [mx, my] = centroid([start, end]);
    label(approach.name, [mx - nx * arrow * 0.8, my - ny * arrow * 0.8], "approach");  // the side vehicles come from
  }
}

function polygon(kind, item, index, cls) {
  const selectedCls = isSelected(kind, index) ? " selected" : "";
  shape("polygon", {points: item.polygon.join(" "), class: cls + selectedCls}, kind, index);
  label(item.name, centroid(item.polygon), cls);
}

// Under the geometry, and not clickable: a box in thin lines, the anchor lines and zones count by as a dot.
function renderDetections() {
  for (const {class_name, confidence, box: [x1, y1, x2, y2], anchor: [ax, ay]} of detections) {
    el("rect", {x: x1, y: y1, width: x2 - x1, height: y2 - y1, class: "detection"});
    el("circle", {cx: ax, cy: ay, r: handleRadius() * 0.6, class: "anchor"});
    label(`${class_name} ${confidence === null ? "" : confidence.toFixed(2)}`, [x1, y1 - 3], "detection");
  }
}

function renderDraft() {
  if (!draft.length) return;
  const points = pointer ? [...draft, pointer] : draft;
  el("polyline", {points: points.join(" "), class: "draft"});
  for (const [cx, cy] of draft) el("circle", {cx, cy, r: handleRadius(), class: "handle draft"});
}

function renderPanel() {
  for (const kind of Object.keys(KINDS)) {
    $("list-" + kind).replaceChildren(...doc[kind].map((item, i) => {
      const entry = document.createElement("li");
      entry.textContent = item.name || "(no name)";
      entry.className = isSelected(kind, i) ? "selected" : "";
      entry.onclick = () => select(kind, i);
      return entry;
    }));
  }
  const item = selected();
  $("selection").hidden = item === null;
  if (item === null) return;
  const kind = selection.lane === null ? KINDS[selection.kind] : "lane";
  $("selection-kind").textContent = kind;
  if (document.activeElement !== $("name")) $("name").value = item.name;
  $("flip").hidden = !(item.start || item.gate || item.line);
  // An approach keeps at least one of the two: with both, either can go; with one, Delete removes the approach.
  const both = selection.kind === "approaches" && Boolean(item.gate && item.polygon);
  $("remove-gate").hidden = $("remove-polygon").hidden = !both;
  const points = item.start ? [item.start, item.end] : POINT_LISTS.flatMap((key) => item[key] || []);
  const [sx, sy] = doc.coordinates === "normalized" ? [doc.width, doc.height] : [1, 1];
  const digits = doc.coordinates === "normalized" ? 4 : 0;
  $("coords").textContent = points.map(([x, y]) => `[${(x / sx).toFixed(digits)}, ${(y / sy).toFixed(digits)}]`).join(" ");
}

// -- tools ---------------------------------------------------------------------------------------

function setTool(name) {
  tool = name;
  draft = [];
  for (const button of document.querySelectorAll("[data-tool]")) button.classList.toggle("active", button.dataset.tool === name);
  $("hint").textContent = HINTS[name];
  svg.classList.toggle("drawing", name !== "select");
  render();
}

function place(point) {
  draft.push(point);
  if (tool === "line" && draft.length === 2) {
    doc.lines.push({name: uniqueName("line", doc.lines), start: draft[0], end: draft[1], lanes: [], src: null});
    finishWith("lines", doc.lines.length - 1);
  } else if (tool === "lane" && draft.length === 2) {
    const line = selection && selection.kind === "lines" ? doc.lines[selection.index] : null;
    if (line === null) return cancel("select a line first, then draw its lane");
    line.lanes.push({name: uniqueName("lane", line.lanes), start: draft[0], end: draft[1], src: null});
    finishWith("lines", selection.index, line.lanes.length - 1);
  } else if (tool === "gate" && draft.length === 2) {
    const approach = selection && selection.kind === "approaches" ? doc.approaches[selection.index] : null;
    if (approach !== null) {
      approach.gate = draft;
      finishWith("approaches", selection.index);
    } else {
      doc.approaches.push({name: uniqueName("approach", doc.approaches), polygon: null, gate: draft, src: null});
      finishWith("approaches", doc.approaches.length - 1);
    }
  } else if (tool === "walk-line" && draft.length === 2) {
    doc.crosswalks.push({name: uniqueName("crosswalk", doc.crosswalks), line: draft, polygon: null, src: null});
    finishWith("crosswalks", doc.crosswalks.length - 1);
  } else if (tool === "grid" && draft.length === 4) {
    const rows = Math.max(1, parseInt($("grid-rows").value, 10) || 1);
    const cols = Math.max(1, parseInt($("grid-cols").value, 10) || 1);
    const bays = gridBays(draft, rows, cols);
    if (bays === null) return cancel("those 4 corners do not make a quadrilateral");
    for (const polygon of bays) doc.slots.push({name: uniqueName("bay", doc.slots), polygon, src: null});
    finishWith("slots", doc.slots.length - 1);
  } else {
    render();
  }
}

// The polygon tools: the list each adds to, the prefix of a new item's name, and its other point lists.
const POLYGON_TOOLS = {
  zone: ["zones", "zone", {}],
  slot: ["slots", "bay", {}],
  approach: ["approaches", "approach", {gate: null}],
  "walk-area": ["crosswalks", "crosswalk", {line: null}],
};

// Closes a polygon. Fewer than 3 corners are kept too: saving then names the problem.
function finish() {
  if (!draft.length || !(tool in POLYGON_TOOLS)) return;
  const [kind, prefix, others] = POLYGON_TOOLS[tool];
  doc[kind].push({name: uniqueName(prefix, doc[kind]), polygon: draft, ...others, src: null});
  finishWith(kind, doc[kind].length - 1);
}

function finishWith(kind, index, lane = null) {
  draft = [];
  selection = {kind, index, lane};
  modified = true;
  setTool("select");
}

function cancel(message) {
  draft = [];
  if (message) say(message, "error");
  render();
}

function removeSelected() {
  if (selection === null) return;
  const items = doc[selection.kind];
  if (selection.lane === null) items.splice(selection.index, 1);
  else items[selection.index].lanes.splice(selection.lane, 1);
  selection = null;
  changed();
}

// The selected approach's gate or polygon taken out, the approach and its other part kept.
function removePart(key) {
  const item = selected();
  if (item === null || selection.kind !== "approaches" || !item.gate || !item.polygon) return;
  item[key] = null;
  changed();
}

// A line or lane's start and end swapped; a gate or a crosswalk line's two points reversed.
function flipSelected() {
  const item = selected();
  if (item === null) return;
  if (item.start) [item.start, item.end] = [item.end, item.start];
  else if (item.gate) item.gate.reverse();
  else if (item.line) item.line.reverse();
  else return;
  changed();
}

// -- server --------------------------------------------------------------------------------------

async function load() {
  const response = await fetch("api/state", {cache: "no-store"});
  const data = await response.json();
  if (!response.ok) return say(data.error, "error");
  doc = data;
  selection = null;
  modified = false;
  svg.setAttribute("viewBox", `0 0 ${doc.width} ${doc.height}`);
  $("units").value = doc.coordinates;
  $("config-name").textContent = doc.config + (doc.exists ? "" : " (new file)");
  if (doc.problem) say("As it is now, the file would not load: " + doc.problem, "error");
  render();
}

async function save() {
  const body = {coordinates: doc.coordinates, ...Object.fromEntries(Object.keys(KINDS).map((kind) => [kind, doc[kind]]))};
  say("saving...");
  try {
    const response = await fetch("api/save", {
      method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body),
    });
    const answer = await response.json();
    if (!response.ok) return say(answer.error, "error");
    await load();
    say(answer.message, "ok");
  } catch (error) {
    say("cannot reach the editor (was it stopped?): " + error, "error");
  }
}

function showFrame() {
  shownIndex = Math.max(0, parseInt($("frame-index").value, 10) || 0);
  img.src = `frame.jpg?index=${shownIndex}&t=${Date.now()}`;
  detections = [];  // they were on another frame
  render();
}

async function preview() {
  const index = shownIndex;
  say("running the detector on this frame...");
  try {
    const response = await fetch("api/preview", {
      method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify({index}),
    });
    const answer = await response.json();
    if (!response.ok) return say(answer.error, "error");
    if (index !== shownIndex) return say("the frame changed: press Preview again");
    detections = answer.detections;
    $("show-detections").checked = true;
    render();
    say(`${detections.length} detections (${answer.model}); the dots are the points lines and zones count`, "ok");
  } catch (error) {
    say("cannot reach the editor (was it stopped?): " + error, "error");
  }
}

// -- events --------------------------------------------------------------------------------------

svg.addEventListener("pointerdown", (event) => {
  if (doc === null || event.button !== 0) return;
  if (tool === "select") return select(null);
  place(toPixels(event));
});
svg.addEventListener("pointermove", (event) => {
  if (doc === null) return;
  if (dragging !== null) {
    dragging(toPixels(event));
    modified = true;
    render();
  } else if (draft.length) {
    pointer = toPixels(event);
    render();
  }
});
svg.addEventListener("pointerup", () => (dragging = null));
for (const button of document.querySelectorAll("[data-tool]")) button.onclick = () => setTool(button.dataset.tool);
$("finish").onclick = finish;
$("cancel").onclick = () => cancel();
$("delete").onclick = removeSelected;
$("flip").onclick = flipSelected;
$("remove-gate").onclick = () => removePart("gate");
$("remove-polygon").onclick = () => removePart("polygon");
$("save").onclick = save;
$("reload-frame").onclick = showFrame;
$("preview").onclick = preview;
$("show-detections").onchange = render;
$("name").oninput = () => {
  const item = selected();
  if (item !== null) item.name = $("name").value;
  changed();
};
$("units").onchange = () => {
  doc.coordinates = $("units").value;
  changed();
};
document.addEventListener("keydown", (event) => {
  if (event.target instanceof HTMLInputElement) return;
  if (event.key === "Enter") finish();
  else if (event.key === "Escape") cancel();
  else if (event.key === "Delete" || event.key === "Backspace") removeSelected();
});
window.addEventListener("beforeunload", (event) => {
  if (modified) event.preventDefault();  // the browser asks before unsaved edits are lost
});
img.onerror = () => say("cannot read a frame of the source (see the editor's terminal)", "error");
window.addEventListener("resize", () => doc && render());

setTool("select");
showFrame();
load();
