// Pure geometry for the zone editor: normalised [x, y] points, text form, and validity.

export function clamp01(v) {
  return Math.min(1, Math.max(0, v));
}

export function round4(v) {
  return Math.round(v * 10000) / 10000;
}

export function toText(points) {
  return points.map(([x, y]) => `${round4(x)},${round4(y)}`).join("; ");
}

/** "x,y; x,y; …" -> points, or throws with a message naming the bad vertex. */
export function fromText(text) {
  const parts = text.split(";").map((p) => p.trim()).filter(Boolean);
  return parts.map((part, i) => {
    const nums = part.split(",").map((n) => Number(n.trim()));
    if (nums.length !== 2 || nums.some((n) => Number.isNaN(n) || n < 0 || n > 1)) {
      throw new Error(`vertex ${i + 1} "${part}": expected x,y between 0 and 1`);
    }
    return nums;
  });
}

function cross(o, a, b) {
  return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0]);
}

function segmentsCross(p1, p2, p3, p4) {
  const d1 = cross(p3, p4, p1);
  const d2 = cross(p3, p4, p2);
  const d3 = cross(p1, p2, p3);
  const d4 = cross(p1, p2, p4);
  return ((d1 > 0 && d2 < 0) || (d1 < 0 && d2 > 0)) && ((d3 > 0 && d4 < 0) || (d3 < 0 && d4 > 0));
}

/** Problems that the edge would refuse anyway, caught before pushing: too few vertices, crossing edges. */
export function problems(points) {
  if (points.length < 3) return ["needs at least 3 vertices"];
  const n = points.length;
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      if (Math.abs(i - j) <= 1 || (i === 0 && j === n - 1)) continue;
      if (segmentsCross(points[i], points[(i + 1) % n], points[j], points[(j + 1) % n])) return ["edges cross each other"];
    }
  }
  return [];
}
