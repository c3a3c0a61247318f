// The rewriting app's page: a gallery, a mask editor and the edit controls.
// Talks to the JSON API only (see /docs for its OpenAPI description).

const $ = (id) => document.getElementById(id);
const COLOURS = { copy: [43, 108, 223], context: [30, 158, 74], erase: [210, 60, 60] };
const S = {
  info: null, res: 64, page: 0, perPage: 24, tile: 96, selected: 0, mode: "copy", tool: "brush",
  copy: null,                 // {sample, mask: canvas}
  paste: null,                // {sample, x, y}: top-left of the placed object, in pixels
  context: new Map(),         // sample -> mask canvas
  erase: new Map(),
  edited: true, side: false, version: 0, heat: null, order: null, drawing: null,
};

// ---------------------------------------------------------------- API helpers
async function api(path, options = {}) {
  const res = await fetch(path, { headers: { "Content-Type": "application/json" }, ...options });
  if (!res.ok) {
    let detail = `${res.status} ${res.statusText}`;
    try {
      const body = await res.json();
      detail = body.problems ? body.problems.join("\n") : (typeof body.detail === "string"
        ? body.detail : JSON.stringify(body.detail));
    } catch (_) { /* not JSON */ }
    throw new Error(detail);
  }
  return res.status === 204 ? null : res.json();
}
function say(text, kind = "info") { const m = $("message"); m.textContent = text; m.className = kind; }
function fail(err) { say(err.message || String(err), "error"); }
function status(text, kind = "") { const s = $("status"); s.textContent = text; s.className = kind; }
function imageURL(i, edited) { return `api/sample/${i}.png?edited=${edited ? 1 : 0}&v=${S.version}`; }

// ---------------------------------------------------------------- masks
function newMask() { const c = document.createElement("canvas"); c.width = c.height = S.res; return c; }
function maskFor(mode, sample, create) {
  if (mode === "copy") {
    if ((!S.copy || S.copy.sample !== sample) && create) S.copy = { sample, mask: newMask() };
    return S.copy && S.copy.sample === sample ? S.copy.mask : null;
  }
  const map = S[mode];
  if (!map.has(sample) && create) map.set(sample, newMask());
  return map.get(sample) || null;
}
function maskEmpty(c) {
  const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
  for (let i = 3; i < d.length; i += 4) if (d[i] > 0) return false;
  return true;
}
function bbox(c) {
  const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
  let x0 = c.width, y0 = c.height, x1 = -1, y1 = -1;
  for (let y = 0; y < c.height; y++) for (let x = 0; x < c.width; x++) {
    if (d[(y * c.width + x) * 4 + 3] > 0) { x0 = Math.min(x0, x); y0 = Math.min(y0, y); x1 = Math.max(x1, x); y1 = Math.max(y1, y); }
  }
  return x1 < 0 ? null : { x: x0, y: y0, w: x1 - x0 + 1, h: y1 - y0 + 1 };
}
function paint(mask, x, y, erase) {
  const g = mask.getContext("2d");
  g.globalCompositeOperation = erase ? "destination-out" : "source-over";
  g.fillStyle = "#fff";
  g.beginPath(); g.arc(x, y, Number($("brush-size").value) / 2, 0, 2 * Math.PI); g.fill();
}
function fillRect(mask, a, b, erase) {
  const g = mask.getContext("2d");
  g.globalCompositeOperation = erase ? "destination-out" : "source-over";
  g.fillStyle = "#fff";
  g.fillRect(Math.min(a.x, b.x), Math.min(a.y, b.y), Math.abs(b.x - a.x) + 1, Math.abs(b.y - a.y) + 1);
}

// ---------------------------------------------------------------- editor canvas
const canvas = $("canvas"), ctx = canvas.getContext("2d");
const editorImage = new Image();
const copySource = new Image();
editorImage.onload = drawEditor;
copySource.onload = drawEditor;

function tinted(mask, rgb, alpha) {
  const t = newMask(), g = t.getContext("2d");
  g.drawImage(mask, 0, 0);
  g.globalCompositeOperation = "source-in";
  g.fillStyle = `rgba(${rgb.join(",")},${alpha})`;
  g.fillRect(0, 0, t.width, t.height);
  return t;
}
function drawEditor() {
  const k = canvas.width / S.res;
  ctx.imageSmoothingEnabled = false;
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  if (editorImage.complete && editorImage.naturalWidth) ctx.drawImage(editorImage, 0, 0, canvas.width, canvas.height);
  for (const mode of ["copy", "context", "erase"]) {
    const m = maskFor(mode, S.selected, false);
    if (m) ctx.drawImage(tinted(m, COLOURS[mode], 0.45), 0, 0, canvas.width, canvas.height);
  }
  if (S.paste && S.paste.sample === S.selected && S.copy) {
    const b = bbox(S.copy.mask);
    if (b && copySource.complete && copySource.naturalWidth) {
      // The copied object (source pixels under the copy mask) at the paste position.
      const patch = newMask(), g = patch.getContext("2d");
      g.drawImage(copySource, 0, 0, S.res, S.res);
      g.globalCompositeOperation = "destination-in";
      g.drawImage(S.copy.mask, 0, 0);
      ctx.drawImage(patch, b.x, b.y, b.w, b.h, S.paste.x * k, S.paste.y * k, b.w * k, b.h * k);
      ctx.strokeStyle = "rgb(138,75,214)"; ctx.lineWidth = 2;
      ctx.strokeRect(S.paste.x * k, S.paste.y * k, b.w * k, b.h * k);
    }
  }
  if (S.drawing && S.drawing.rect) {
    const { a, b } = S.drawing.rect;
    ctx.strokeStyle = "#ff0"; ctx.lineWidth = 1;
    ctx.strokeRect(Math.min(a.x, b.x) * k, Math.min(a.y, b.y) * k, (Math.abs(b.x - a.x) + 1) * k, (Math.abs(b.y - a.y) + 1) * k);
  }
}
function toPixel(ev) {
  const r = canvas.getBoundingClientRect();
  return { x: Math.floor((ev.clientX - r.left) / r.width * S.res), y: Math.floor((ev.clientY - r.top) / r.height * S.res) };
}
function placePaste(p) {
  if (!S.copy || maskEmpty(S.copy.mask)) { say("Mark an object in Copy mode first.", "error"); return; }
  if (S.selected === S.copy.sample) { say("Paste onto another sample: click one in the gallery.", "error"); return; }
  const b = bbox(S.copy.mask);
  S.paste = { sample: S.selected, x: Math.round(p.x - b.w / 2), y: Math.round(p.y - b.h / 2), w: b.w, h: b.h };
}
canvas.addEventListener("mousedown", (ev) => {
  const p = toPixel(ev);
  if (S.mode === "paste") { placePaste(p); S.drawing = { paste: true }; drawEditor(); refreshMarks(); return; }
  const mask = maskFor(S.mode, S.selected, true);
  if (S.tool === "rect") S.drawing = { rect: { a: p, b: p }, mask };
  else { S.drawing = { mask }; paint(mask, p.x, p.y, S.tool === "eraser"); }
  drawEditor();
});
canvas.addEventListener("mousemove", (ev) => {
  if (!S.drawing) return;
  const p = toPixel(ev);
  if (S.drawing.paste) placePaste(p);
  else if (S.drawing.rect) S.drawing.rect.b = p;
  else paint(S.drawing.mask, p.x, p.y, S.tool === "eraser");
  drawEditor();
});
window.addEventListener("mouseup", () => {
  if (!S.drawing) return;
  if (S.drawing.rect) fillRect(S.drawing.mask, S.drawing.rect.a, S.drawing.rect.b, false);
  S.drawing = null;
  drawEditor(); refreshMarks(); if (S.heat) showHeat(false);
});

// ---------------------------------------------------------------- gallery
function pageSamples() {
  if (S.order) return S.order.slice(0, S.perPage);
  const start = S.page * S.perPage;
  return Array.from({ length: S.perPage }, (_, i) => start + i);
}
function marksOf(i) {
  const out = [];
  if (S.copy && S.copy.sample === i && !maskEmpty(S.copy.mask)) out.push("copy");
  if (S.paste && S.paste.sample === i) out.push("paste");
  if (S.context.has(i) && !maskEmpty(S.context.get(i))) out.push("context");
  if (S.erase.has(i) && !maskEmpty(S.erase.get(i))) out.push("erase");
  return out;
}
function renderGallery() {
  const g = $("gallery");
  g.innerHTML = "";
  for (const i of pageSamples()) {
    const tile = document.createElement("div");
    tile.className = "tile" + (i === S.selected ? " selected" : "");
    tile.dataset.sample = i;
    const imgs = document.createElement("div");
    imgs.className = "imgs";
    const views = S.side ? [false, true] : [S.edited];
    for (const edited of views) {
      const img = document.createElement("img");
      img.width = img.height = S.tile;
      img.alt = `sample ${i}${S.side ? (edited ? " edited" : " original") : ""}`;
      img.src = imageURL(i, edited);
      imgs.appendChild(img);
    }
    tile.appendChild(imgs);
    const label = document.createElement("span");
    label.className = "label";
    label.textContent = `#${i}` + (S.heat && S.heat.has(i) ? ` ${S.heat.get(i).score.toFixed(2)}` : "");
    tile.appendChild(label);
    const marks = document.createElement("span");
    marks.className = "marks";
    tile.appendChild(marks);
    if (S.heat && S.heat.has(i)) tile.appendChild(heatCanvas(S.heat.get(i).heat));
    tile.addEventListener("click", () => select(i));
    g.appendChild(tile);
  }
  $("page-label").textContent = S.order ? `best matches` : `samples ${S.page * S.perPage}–${S.page * S.perPage + S.perPage - 1}`;
  refreshMarks();
}
function heatCanvas(heat) {
  const n = heat.length, c = document.createElement("canvas");
  c.className = "heat"; c.width = n; c.height = n;
  c.style.width = c.style.height = `${S.tile}px`;
  const g = c.getContext("2d"), d = g.createImageData(n, n);
  heat.forEach((row, y) => row.forEach((v, x) => {
    const o = (y * n + x) * 4; d.data[o] = 255; d.data[o + 1] = 40; d.data[o + 2] = 40; d.data[o + 3] = Math.round(v * 170);
  }));
  g.putImageData(d, 0, 0);
  return c;
}
function refreshMarks() {
  for (const tile of document.querySelectorAll(".tile")) {
    const marks = tile.querySelector(".marks");
    marks.innerHTML = marksOf(Number(tile.dataset.sample)).map((m) => `<span class="mark ${m}">${m}</span>`).join("");
  }
  const items = [];
  if (S.copy && !maskEmpty(S.copy.mask)) items.push(`copy: sample ${S.copy.sample}`);
  if (S.paste) items.push(`paste: sample ${S.paste.sample} at (${S.paste.x}, ${S.paste.y})`);
  for (const [i, m] of S.context) if (!maskEmpty(m)) items.push(`context: sample ${i}`);
  for (const [i, m] of S.erase) if (!maskEmpty(m)) items.push(`erase: sample ${i}`);
  $("selections").innerHTML = items.map((t) => `<li>${t}</li>`).join("");
}
function select(i) {
  S.selected = i;
  $("editor-index").textContent = i;
  editorImage.src = imageURL(i, S.edited);
  for (const t of document.querySelectorAll(".tile")) t.classList.toggle("selected", Number(t.dataset.sample) === i);
  drawEditor();
}

// ---------------------------------------------------------------- heat map
function contextEntries(mode) {
  return [...S[mode]].filter(([, m]) => !maskEmpty(m)).map(([sample, m]) => ({ sample, mask: { png: m.toDataURL("image/png") } }));
}
async function showHeat(sortWide) {
  const mode = S.mode === "erase" || (contextEntries("context").length === 0 && contextEntries("erase").length) ? "erase" : "context";
  const context = contextEntries(mode);
  if (!context.length) { say("Mark context regions (Context mode) on a few samples first.", "error"); return; }
  const samples = sortWide
    ? Array.from({ length: 96 }, (_, i) => S.page * S.perPage + i)
    : pageSamples();
  try {
    status("finding where the rule fires…", "running");
    const res = await api("api/heatmap", { method: "POST", body: JSON.stringify({ layer: $("layer").value, rank: Number($("rank").value), direction: Number($("rank").value) > 1 ? "zca" : "mean", context, samples }) });
    S.heat = new Map(res.samples.map((s) => [s.sample, s]));
    if (sortWide) S.order = [...res.samples].sort((a, b) => b.score - a.score).map((s) => s.sample);
    status("heat map ready", "done");
    say(sortWide ? "Samples sorted by how strongly the rule fires (score = strongest response)." : "Red: where the context direction fires on each sample.");
    renderGallery();
  } catch (e) { status("", ""); fail(e); }
}

// ---------------------------------------------------------------- edits
function buildSpec() {
  const erase = contextEntries("erase");
  const rank = Number($("rank").value);
  const spec = { version: 1, model: S.info.model, layer: $("layer").value, rank,
    direction: rank > 1 ? "zca" : "mean", solver: { name: $("solver").value, params: {} } };
  const copyOK = S.copy && !maskEmpty(S.copy.mask);
  if (erase.length && !copyOK) {
    return { ...spec, kind: "erase", context: erase, erase: { units: Number($("units").value) } };
  }
  if (!copyOK) throw new Error("Nothing to apply: mark an object (Copy) and place it (Paste), or mark regions to Erase.");
  if (!S.paste) throw new Error("Place the copied object on another sample (Paste mode: click a sample, then drag on it).");
  const p = S.paste;
  return { ...spec, kind: "copy-paste", copy: { sample: S.copy.sample, mask: { png: S.copy.mask.toDataURL("image/png") } },
    paste: { sample: p.sample, mask: { rect: [Math.max(0, p.x), Math.max(0, p.y), Math.min(S.res, p.x + p.w), Math.min(S.res, p.y + p.h)] } },
    context: contextEntries("context") };
}
async function applyEdit() {
  let spec;
  try { spec = buildSpec(); } catch (e) { fail(e); return; }
  $("apply").disabled = true;
  try {
    await api("api/apply", { method: "POST", body: JSON.stringify(spec) });
    status("applying…", "running");
    say("Computing the edit (statistics are computed once per layer; the first edit on a layer takes longer).");
    for (;;) {
      await new Promise((r) => setTimeout(r, 300));
      const job = await api("api/job");
      if (job.state === "running") { status(`applying… ${Math.round(Date.now() / 1000 - job.started)} s`, "running"); continue; }
      if (job.state === "failed") { status("edit failed", "failed"); say(job.message, "error"); break; }
      S.version = job.version;
      status(`applied (${job.edits} edit${job.edits === 1 ? "" : "s"})`, "done");
      say(job.message + " — the gallery shows the edited model.");
      S.edited = true; $("show-edited").checked = true;
      refreshImages();
      break;
    }
  } catch (e) { status("", ""); fail(e); } finally { $("apply").disabled = false; }
}
function refreshImages() { renderGallery(); select(S.selected); }
async function undoOrReset(which) {
  try {
    const res = await api(`api/${which}`, { method: "POST" });
    S.version = res.version;
    status(`${which === "undo" ? "undone" : "reset"} (${res.edits} edit${res.edits === 1 ? "" : "s"} left)`, "done");
    say(which === "undo" ? "Last edit undone." : "All edits undone: the original model.");
    refreshImages();
  } catch (e) { fail(e); }
}

// ---------------------------------------------------------------- specs
async function refreshSpecList() {
  const names = await api("api/specs");
  $("spec-list").innerHTML = `<option value="">load…</option>` + names.map((n) => `<option>${n}</option>`).join("");
}
async function saveSpec() {
  const name = $("spec-name").value.trim();
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/.test(name) || name.includes("..")) {
    say(`invalid name "${name}": use letters, digits, '-', '_' and '.' (at most 64 characters)`, "error");
    return;
  }
  try {
    await api(`api/specs/${encodeURIComponent(name)}`, { method: "PUT", body: JSON.stringify(buildSpec()) });
    say(`Saved "${name}".`); refreshSpecList();
  } catch (e) { fail(e); }
}
function maskFromSpec(m) {
  const c = newMask(), g = c.getContext("2d");
  if (m.rect) { g.fillStyle = "#fff"; const [x0, y0, x1, y1] = m.rect; g.fillRect(x0, y0, x1 - x0, y1 - y0); return Promise.resolve(c); }
  if (m.png) return new Promise((ok) => { const im = new Image(); im.onload = () => { g.drawImage(im, 0, 0, S.res, S.res); ok(c); }; im.src = m.png; });
  return Promise.resolve(c);
}
async function loadSpec(name) {
  try {
    const spec = await api(`api/specs/${encodeURIComponent(name)}`);
    S.copy = null; S.paste = null; S.context = new Map(); S.erase = new Map();
    $("layer").value = spec.layer; $("rank").value = spec.rank || 1;
    if (spec.solver && spec.solver.name) $("solver").value = spec.solver.name;
    const target = spec.kind === "erase" ? S.erase : S.context;
    for (const c of spec.context || []) target.set(c.sample, await maskFromSpec(c.mask));
    if (spec.copy) S.copy = { sample: spec.copy.sample, mask: await maskFromSpec(spec.copy.mask) };
    if (spec.copy) copySource.src = imageURL(spec.copy.sample, false);
    if (spec.paste && spec.paste.mask && spec.paste.mask.rect && S.copy) {
      const [x0, y0, x1, y1] = spec.paste.mask.rect, b = bbox(S.copy.mask);
      S.paste = { sample: spec.paste.sample, x: Math.round((x0 + x1 - b.w) / 2), y: Math.round((y0 + y1 - b.h) / 2), w: b.w, h: b.h };
    }
    say(`Loaded "${name}".`); renderGallery(); select(S.selected);
  } catch (e) { fail(e); }
}

// ---------------------------------------------------------------- wiring
function layerLabel(L) { return `${L.name} (${L.key_resolution}×${L.key_resolution} keys → ${L.value_resolution}×${L.value_resolution}, ${L.in_channels} ch)`; }
async function start() {
  try {
    S.info = await api("api/info");
  } catch (e) { fail(e); return; }
  S.res = S.info.resolution; S.version = S.info.version;
  $("model-info").textContent = `${S.info.model} · ${S.info.family} · ${S.res}×${S.res}`;
  $("layer").innerHTML = S.info.layers.map((L) => `<option value="${L.name}">${layerLabel(L)}</option>`).join("");
  const mid = S.info.layers[Math.floor(S.info.layers.length / 2)];
  $("layer").value = mid.name;
  $("solver").innerHTML = S.info.solvers.map((s) => `<option>${s}</option>`).join("");
  for (const r of document.querySelectorAll("input[name=mode]")) r.addEventListener("change", () => {
    S.mode = r.value;
    $("editor-hint").textContent = { copy: "paint the object to copy", paste: "click another sample, then drag to place the object", context: "paint where the rule should apply (a few samples)", erase: "paint what to remove (a few samples)" }[S.mode];
    if (S.mode === "paste" && S.copy) copySource.src = imageURL(S.copy.sample, false);
    drawEditor();
  });
  for (const r of document.querySelectorAll("input[name=tool]")) r.addEventListener("change", () => { S.tool = r.value; });
  $("clear-mask").addEventListener("click", () => {
    if (S.mode === "paste") S.paste = null;
    else if (S.mode === "copy") { if (S.copy && S.copy.sample === S.selected) S.copy = null; }
    else S[S.mode].delete(S.selected);
    drawEditor(); refreshMarks();
  });
  $("apply").addEventListener("click", applyEdit);
  $("undo").addEventListener("click", () => undoOrReset("undo"));
  $("reset").addEventListener("click", () => undoOrReset("reset"));
  $("show-edited").addEventListener("change", (e) => { S.edited = e.target.checked; refreshImages(); status(S.edited ? "showing the edited model" : "showing the original model"); });
  $("side-by-side").addEventListener("change", (e) => { S.side = e.target.checked; renderGallery(); });
  $("heatmap").addEventListener("click", () => showHeat(false));
  $("sort-match").addEventListener("click", () => showHeat(true));
  $("heat-off").addEventListener("click", () => { S.heat = null; S.order = null; renderGallery(); });
  $("prev").addEventListener("click", () => { S.order = null; S.page = Math.max(0, S.page - 1); renderGallery(); });
  $("next").addEventListener("click", () => { S.order = null; S.page += 1; renderGallery(); });
  $("goto").addEventListener("change", (e) => { S.order = null; S.page = Math.floor(Math.max(0, Number(e.target.value)) / S.perPage); renderGallery(); select(Math.max(0, Number(e.target.value))); });
  $("tile-size").addEventListener("input", (e) => { S.tile = Number(e.target.value); renderGallery(); });
  $("save-spec").addEventListener("click", saveSpec);
  $("spec-list").addEventListener("change", (e) => { if (e.target.value) loadSpec(e.target.value); });
  renderGallery(); select(0); refreshSpecList();
  status(S.info.edits.length ? `${S.info.edits.length} edit(s) applied` : "ready");
}
start();
