// The marks' masks: small canvases at the model's resolution, kept in state.copy / state.context /
// state.erase / state.preserve. Create, look up, test, measure, paint, tint, encode for the API and decode from a spec.

// A mask pixel counts (is shown, and sent in a spec) when its alpha is at least ALPHA_MIN.
export const ALPHA_MIN = 128;

// A new mask canvas. `mask.specMask` holds the spec's own mask ({rect}, {polygon}, {png}) while
// the canvas is unchanged since it was loaded, so that a loaded spec is saved as it was.
export function newMask(res) { const c = document.createElement("canvas"); c.width = c.height = res; c.specMask = null; return c; }

export function cloneMask(m) {
  if (!m) return null;
  const c = newMask(m.width); c.getContext("2d").drawImage(m, 0, 0); c.specMask = m.specMask; return c;
}

// Every pixel fully on or off (alpha ALPHA_MIN and above: on): what the page shows is what it sends.
export function binarize(c) {
  const g = c.getContext("2d"), im = g.getImageData(0, 0, c.width, c.height), d = im.data;
  for (let i = 0; i < d.length; i += 4) {
    const on = d[i + 3] >= ALPHA_MIN;
    d[i] = d[i + 1] = d[i + 2] = 255; d[i + 3] = on ? 255 : 0;
  }
  g.putImageData(im, 0, 0);
}

// The mask `mode` has on `sample`, made empty first if `create` and there is none.
export function maskFor(state, mode, sample, create) {
  if (mode === "copy") {
    if ((!state.copy || state.copy.sample !== sample) && create) state.copy = { sample, mask: newMask(state.res) };
    return state.copy && state.copy.sample === sample ? state.copy.mask : null;
  }
  const map = state[mode];
  if (!map.has(sample) && create) map.set(sample, newMask(state.res));
  return map.get(sample) || null;
}

export function maskEmpty(c) {
  const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
  for (let i = 3; i < d.length; i += 4) if (d[i] >= ALPHA_MIN) return false;
  return true;
}

export function bbox(c) {
  const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
  let x0 = c.width, y0 = c.height, x1 = -1, y1 = -1;
  for (let y = 0; y < c.height; y++) for (let x = 0; x < c.width; x++) {
    if (d[(y * c.width + x) * 4 + 3] >= ALPHA_MIN) { x0 = Math.min(x0, x); y0 = Math.min(y0, y); x1 = Math.max(x1, x); y1 = Math.max(y1, y); }
  }
  return x1 < 0 ? null : { x: x0, y: y0, w: x1 - x0 + 1, h: y1 - y0 + 1 };
}

// A round brush dab of diameter `size` centred on pixel (x, y): the pixels whose centres lie
// within size/2 of that pixel's centre, drawn whole (size 1 is one pixel); `erase` clears them.
export function paint(mask, x, y, size, erase) {
  mask.specMask = null;
  const g = mask.getContext("2d"), r = size / 2, R = Math.floor(r);
  g.fillStyle = "#fff";
  for (let dy = -R; dy <= R; dy++) for (let dx = -R; dx <= R; dx++) {
    if (dx * dx + dy * dy > r * r) continue;
    if (erase) g.clearRect(x + dx, y + dy, 1, 1); else g.fillRect(x + dx, y + dy, 1, 1);
  }
}

// Dabs at every pixel on the way from a to b (both included), so a fast stroke has no gaps.
export function paintLine(mask, a, b, size, erase) {
  const n = Math.max(Math.abs(b.x - a.x), Math.abs(b.y - a.y), 1);
  for (let i = 0; i <= n; i++) {
    paint(mask, Math.round(a.x + (b.x - a.x) * i / n), Math.round(a.y + (b.y - a.y) * i / n), size, erase);
  }
}

// How many pixels masks a and b both mark (0 when either is missing).
export function overlap(a, b) {
  if (!a || !b) return 0;
  const da = a.getContext("2d").getImageData(0, 0, a.width, a.height).data;
  const db = b.getContext("2d").getImageData(0, 0, b.width, b.height).data;
  let n = 0;
  for (let i = 3; i < da.length; i += 4) if (da[i] >= ALPHA_MIN && db[i] >= ALPHA_MIN) n++;
  return n;
}

// The mask's outline (the edges between marked and unmarked pixels) as a path scaled by k, for
// a dashed black-and-white line that shows on any colour of image.
export function outlinePath(mask, k) {
  const w = mask.width, h = mask.height, d = mask.getContext("2d").getImageData(0, 0, w, h).data;
  const on = (x, y) => x >= 0 && y >= 0 && x < w && y < h && d[(y * w + x) * 4 + 3] >= ALPHA_MIN;
  const path = new Path2D();
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
    if (!on(x, y)) continue;
    if (!on(x, y - 1)) { path.moveTo(x * k, y * k); path.lineTo((x + 1) * k, y * k); }
    if (!on(x, y + 1)) { path.moveTo(x * k, (y + 1) * k); path.lineTo((x + 1) * k, (y + 1) * k); }
    if (!on(x - 1, y)) { path.moveTo(x * k, y * k); path.lineTo(x * k, (y + 1) * k); }
    if (!on(x + 1, y)) { path.moveTo((x + 1) * k, y * k); path.lineTo((x + 1) * k, (y + 1) * k); }
  }
  return path;
}

// The rectangle with corners a and b, both included.
export function fillRect(mask, a, b, erase) {
  mask.specMask = null;
  const g = mask.getContext("2d");
  g.globalCompositeOperation = erase ? "destination-out" : "source-over";
  g.fillStyle = "#fff";
  g.fillRect(Math.min(a.x, b.x), Math.min(a.y, b.y), Math.abs(b.x - a.x) + 1, Math.abs(b.y - a.y) + 1);
}

// The mask in colour `rgb` at opacity `alpha`, for drawing over the sample.
export function tinted(mask, rgb, alpha, res) {
  const t = newMask(res), g = t.getContext("2d");
  g.drawImage(mask, 0, 0);
  g.globalCompositeOperation = "source-in";
  g.fillStyle = `rgba(${rgb.join(",")},${alpha})`;
  g.fillRect(0, 0, t.width, t.height);
  return t;
}

// The non-empty masks of a mode ("context", "erase" or "preserve") as the API's [{sample, mask: {png}}].
export function contextEntries(state, mode) {
  return [...state[mode]].filter(([, m]) => m.specMask || !maskEmpty(m)).map(([sample, m]) => ({ sample, mask: maskJSON(m) }));
}

// A mask as the spec's JSON: the loaded spec's own mask while unchanged, else a PNG.
export function maskJSON(m) { return m.specMask ? JSON.parse(JSON.stringify(m.specMask)) : { png: m.toDataURL("image/png") }; }

// A spec's mask ({rect}, {polygon} or {png}) as a mask canvas.
export async function maskFromSpec(m, res) {
  const c = await drawSpecMask(m, res);
  c.specMask = JSON.parse(JSON.stringify(m));
  return c;
}
function drawSpecMask(m, res) {
  const c = newMask(res), g = c.getContext("2d");
  if (m.rect) { g.fillStyle = "#fff"; const [x0, y0, x1, y1] = m.rect; g.fillRect(x0, y0, x1 - x0, y1 - y0); return Promise.resolve(c); }
  if (m.polygon) {
    g.fillStyle = "#fff"; g.beginPath();
    m.polygon.forEach(([x, y], i) => (i ? g.lineTo(x, y) : g.moveTo(x, y)));
    g.closePath(); g.fill(); return Promise.resolve(c);
  }
  if (m.png) return new Promise((ok) => { const im = new Image(); im.onload = () => { g.drawImage(im, 0, 0, res, res); ok(c); }; im.src = m.png; });
  return Promise.resolve(c);
}

// The edit being made as a deep copy, for stroke undo and redo: its marks (copy, paste, context,
// erase, preserve), its kind, the loaded spec and its strength, the applied edit it made, and `at`, the sample
// the change was made on (undo shows that sample).
export function snapshotMarks(state, at = state.selected) {
  const maps = (m) => new Map([...m].map(([k, v]) => [k, cloneMask(v)]));
  return { copy: state.copy && { sample: state.copy.sample, mask: cloneMask(state.copy.mask) },
    paste: state.paste && { ...state.paste }, context: maps(state.context), erase: maps(state.erase),
    preserve: maps(state.preserve), kind: state.kind, loaded: state.loaded, strength: state.strength,
    applied: state.applied && { ...state.applied }, at };
}
export function restoreMarks(state, snap) {
  const { at, ...rest } = snapshotMarks(snap, snap.at);
  Object.assign(state, rest);
}

// Whether the edit being made has any mark.
export function hasMarks(state) {
  return !!(state.copy || state.paste || state.context.size || state.erase.size || state.preserve.size);
}
