// Plane geometry for the editor: the perspective grid of parking bays and the "in" arrow of a line.
"use strict";

// The projective map of the unit square onto quad q = [p0, p1, p2, p3] (Heckbert's square-to-quad):
// (0,0) -> p0, (1,0) -> p1, (1,1) -> p2, (0,1) -> p3. Equal steps in (u, v) are equal steps on the
// ground plane the quad lies on, so bays cut this way shrink with distance as the real bays do.
function squareToQuad(q) {
  const [[x0, y0], [x1, y1], [x2, y2], [x3, y3]] = q;
  const sx = x0 - x1 + x2 - x3, sy = y0 - y1 + y2 - y3;
  let g = 0, h = 0;
  if (Math.abs(sx) > 1e-9 || Math.abs(sy) > 1e-9) {
    const dx1 = x1 - x2, dx2 = x3 - x2, dy1 = y1 - y2, dy2 = y3 - y2;
    const den = dx1 * dy2 - dx2 * dy1;
    if (Math.abs(den) < 1e-12) return null;  // three corners on one line: no quadrilateral
    g = (sx * dy2 - dx2 * sy) / den;
    h = (dx1 * sy - sx * dy1) / den;
  }
  const a = x1 - x0 + g * x1, b = x3 - x0 + h * x3, d = y1 - y0 + g * y1, e = y3 - y0 + h * y3;
  return (u, v) => {
    const w = g * u + h * v + 1;
    return [(a * u + b * v + x0) / w, (d * u + e * v + y0) / w];
  };
}

// rows x cols bays filling quad (corners in order around it; p0 -> p1 runs along a row).
function gridBays(quad, rows, cols) {
  const map = squareToQuad(quad);
  if (map === null) return null;
  const round = ([x, y]) => [Math.round(x * 10) / 10, Math.round(y * 10) / 10];
  const bays = [];
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const corners = [[c, r], [c + 1, r], [c + 1, r + 1], [c, r + 1]];
      bays.push(corners.map(([u, v]) => round(map(u / cols, v / rows))));
    }
  }
  return bays;
}

// The "in" side of a line: the unit normal toward positive cross(end - start, anchor - start)
// (image y grows downward, so a line drawn left to right has "in" pointing down).
function inNormal(start, end) {
  const dx = end[0] - start[0], dy = end[1] - start[1];
  const length = Math.hypot(dx, dy) || 1;
  return [-dy / length, dx / length];
}

// SVG path of an arrow from the middle of a line toward its "in" side, `size` pixels long.
function inArrowPath(start, end, size) {
  const [nx, ny] = inNormal(start, end);
  const mx = (start[0] + end[0]) / 2, my = (start[1] + end[1]) / 2;
  const tx = mx + nx * size, ty = my + ny * size;
  const head = size * 0.35, px = -ny * head, py = nx * head;  // across the arrow
  const bx = tx - nx * head, by = ty - ny * head;
  return `M${mx},${my} L${tx},${ty} M${bx + px},${by + py} L${tx},${ty} L${bx - px},${by - py}`;
}

function centroid(points) {
  const n = points.length || 1;
  return [points.reduce((s, p) => s + p[0], 0) / n, points.reduce((s, p) => s + p[1], 0) / n];
}
