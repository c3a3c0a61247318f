// The marks' masks: small canvases at the model's resolution, kept in state.copy / state.context /
// state.erase / state.preserve. Create, look up, test, measure, paint, tint, encode for the API and decode from a spec.

export function newMask(res) { const c = document.createElement("canvas"); c.width = c.height = res; return c; }

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
  for (let i = 3; i < d.length; i += 4) if (d[i] > 0) return false;
  return true;
}

export function bbox(c) {
  const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
  let x0 = c.width, y0 = c.height, x1 = -1, y1 = -1;
  for (let y = 0; y < c.height; y++) for (let x = 0; x < c.width; x++) {
    if (d[(y * c.width + x) * 4 + 3] > 0) { x0 = Math.min(x0, x); y0 = Math.min(y0, y); x1 = Math.max(x1, x); y1 = Math.max(y1, y); }
  }
  return x1 < 0 ? null : { x: x0, y: y0, w: x1 - x0 + 1, h: y1 - y0 + 1 };
}

// A round brush dab of diameter `size`; `erase` clears instead.
export function paint(mask, x, y, size, erase) {
  const g = mask.getContext("2d");
  g.globalCompositeOperation = erase ? "destination-out" : "source-over";
  g.fillStyle = "#fff";
  g.beginPath(); g.arc(x, y, size / 2, 0, 2 * Math.PI); g.fill();
}

// The rectangle with corners a and b, both included.
export function fillRect(mask, a, b, erase) {
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
  return [...state[mode]].filter(([, m]) => !maskEmpty(m)).map(([sample, m]) => ({ sample, mask: { png: m.toDataURL("image/png") } }));
}

// A spec's mask ({rect}, {polygon} or {png}) as a mask canvas.
export function maskFromSpec(m, res) {
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
