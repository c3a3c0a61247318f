// The mask editor: draws the selected sample with its masks tinted, the placed paste and the
// rectangle being dragged, and turns mouse input into marks (brush, eraser, rectangle, paste drag).
// Every stroke can be undone and redone (Ctrl+Z, Ctrl+Shift+Z), and undo shows the sample it
// changed; a mask left with no visible pixel is removed, so that what looks empty is empty. Each
// mask is tinted and outlined by a black-and-white dashed line, visible on any colour of image.

import { $ } from "./dom.js";
import { say } from "./messages.js";
import { sampleURL } from "./api.js";
import { binarize, bbox, fillRect, maskEmpty, maskFor, newMask, outlinePath, paint, paintLine, restoreMarks, snapshotMarks, tinted } from "./masks.js";
import { overlapText, overlaps, refreshButtons, refreshMarks } from "./selections.js";

const COLOURS = { copy: [43, 108, 223], context: [30, 158, 74], erase: [210, 60, 60], preserve: [224, 138, 0] };
const HINTS = {
  copy: "paint the object to copy", paste: "click another sample, then drag to place the object",
  context: "paint where the rule should apply (on a few samples)", erase: "paint what to remove (on a few samples)",
  preserve: "paint where the rule must not act",
};

// Pixels per cell of the selected layer's output: a paste moves the object by whole cells, so
// the preview shows exactly where the edit puts it.
export function pasteCell(state) {
  const L = state.info && state.info.layers.find((l) => l.name === $("layer").value);
  return L ? Math.max(1, Math.round(state.res / L.value_resolution)) : 1;
}

// Where the placed object is drawn: the copy mask's box moved by (dx, dy).
export function pasteBox(state) {
  if (!state.paste || !state.copy) return null;
  const b = bbox(state.copy.mask);
  return b && { x: b.x + state.paste.dx, y: b.y + state.paste.dy, w: b.w, h: b.h };
}

// `onStrokeEnd` runs after each finished stroke, rectangle or paste drag (and stroke undo);
// `onRestore(sample)` after an undo or redo that changed sample `sample`, to show it, and the
// kind and name the restored edit has.
export function createEditor(state, { onStrokeEnd, onRestore }) {
  const canvas = $("canvas"), ctx = canvas.getContext("2d");
  const editorImage = new Image();
  const copySource = new Image();
  editorImage.onload = draw;
  copySource.onload = draw;

  function draw() {
    const k = canvas.width / state.res;
    ctx.imageSmoothingEnabled = false;
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    if (editorImage.complete && editorImage.naturalWidth) ctx.drawImage(editorImage, 0, 0, canvas.width, canvas.height);
    for (const mode of ["copy", "context", "erase", "preserve"]) {
      const m = maskFor(state, mode, state.selected, false);
      if (m) {
        ctx.drawImage(tinted(m, COLOURS[mode], 0.45, state.res), 0, 0, canvas.width, canvas.height);
        outline(outlinePath(m, k));
      }
    }
    const p = pasteBox(state);
    if (p && state.paste.sample === state.selected) {
      const b = bbox(state.copy.mask);
      if (copySource.complete && copySource.naturalWidth) {
        // The copied object (source pixels under the copy mask) at the paste position.
        const patch = newMask(state.res), g = patch.getContext("2d");
        g.drawImage(copySource, 0, 0, state.res, state.res);
        g.globalCompositeOperation = "destination-in";
        g.drawImage(state.copy.mask, 0, 0);
        ctx.globalAlpha = 0.85;
        ctx.drawImage(patch, b.x, b.y, b.w, b.h, p.x * k, p.y * k, b.w * k, b.h * k);
        ctx.globalAlpha = 1;
      }
      ctx.strokeStyle = "rgb(138,75,214)"; ctx.lineWidth = 4;
      ctx.strokeRect(p.x * k, p.y * k, p.w * k, p.h * k);
      const box = new Path2D();
      box.rect(p.x * k, p.y * k, p.w * k, p.h * k);
      outline(box);                             // visible on a purple object too
    }
    if (state.drawing && state.drawing.rect) {
      const { a, b } = state.drawing.rect;
      ctx.strokeStyle = "#ff0"; ctx.lineWidth = 1;
      ctx.strokeRect(Math.min(a.x, b.x) * k, Math.min(a.y, b.y) * k, (Math.abs(b.x - a.x) + 1) * k, (Math.abs(b.y - a.y) + 1) * k);
    }
  }
  // A path drawn as alternating black and white dashes.
  function outline(path) {
    ctx.save(); ctx.lineWidth = 2; ctx.setLineDash([4, 4]);
    ctx.strokeStyle = "#fff"; ctx.lineDashOffset = 0; ctx.stroke(path);
    ctx.strokeStyle = "#000"; ctx.lineDashOffset = 4; ctx.stroke(path);
    ctx.restore();
  }
  function toPixel(ev) {
    const r = canvas.getBoundingClientRect();
    return { x: Math.floor((ev.clientX - r.left) / r.width * state.res), y: Math.floor((ev.clientY - r.top) / r.height * state.res) };
  }
  function brush(mask, p) { paint(mask, p.x, p.y, Number($("brush-size").value), state.tool === "eraser"); }
  function brushLine(mask, a, b) { paintLine(mask, a, b, Number($("brush-size").value), state.tool === "eraser"); }
  // Centre the object on pixel p, snapped to whole cells of the layer.
  function placePaste(p) {
    const b = bbox(state.copy.mask), cell = pasteCell(state);
    const dx = Math.round((p.x - b.w / 2 - b.x) / cell) * cell, dy = Math.round((p.y - b.h / 2 - b.y) / cell) * cell;
    state.paste = { sample: state.selected, dx, dy, spec: null };
  }
  function canPaste() {
    if (!state.copy || maskEmpty(state.copy.mask)) { say("Mark an object in Copy mode first.", "error"); return false; }
    if (state.selected === state.copy.sample) { say("Paste onto another sample: click one in the gallery.", "error"); return false; }
    return true;
  }
  // A mark change that stroke undo can take back.
  function snapshot(at) { return { ...snapshotMarks(state, at), specName: $("spec-name").value }; }
  function remember() {
    state.undo.push(snapshot()); if (state.undo.length > 100) state.undo.shift(); state.redo = [];
    refreshButtons(state);
  }
  // Masks with no visible pixel are removed (absent, not "present but empty").
  function dropEmpty() {
    if (state.copy && !state.copy.mask.specMask && maskEmpty(state.copy.mask)) { state.copy = null; state.paste = null; }
    for (const mode of ["context", "erase", "preserve"]) {
      for (const [i, m] of [...state[mode]]) if (!m.specMask && maskEmpty(m)) state[mode].delete(i);
    }
  }

  canvas.addEventListener("mousedown", (ev) => {
    const p = toPixel(ev);
    if (state.mode === "paste") {
      if (!canPaste()) return;
      remember(); placePaste(p); state.drawing = { paste: true }; draw(); refreshMarks(state); return;
    }
    remember();
    const mask = maskFor(state, state.mode, state.selected, true);
    if (state.tool === "rect") state.drawing = { rect: { a: p, b: p }, mask };
    else { state.drawing = { mask, last: p }; brush(mask, p); }
    draw();
  });
  canvas.addEventListener("mousemove", (ev) => {
    if (!state.drawing) return;
    const p = toPixel(ev);
    if (state.drawing.paste) placePaste(p);
    else if (state.drawing.rect) state.drawing.rect.b = p;
    else { brushLine(state.drawing.mask, state.drawing.last, p); state.drawing.last = p; }
    draw();
  });
  window.addEventListener("mouseup", () => {
    if (!state.drawing) return;
    if (state.drawing.rect) fillRect(state.drawing.mask, state.drawing.rect.a, state.drawing.rect.b, state.tool === "eraser");
    if (state.drawing.mask && !state.drawing.mask.specMask) binarize(state.drawing.mask);
    state.drawing = null;
    dropEmpty();
    draw(); refreshMarks(state); onStrokeEnd();
    const o = overlaps(state);
    if (o.length) say(o.map(overlapText).join("\n"), "warn");
  });

  function undoStroke(redo = false) {
    const from = redo ? state.redo : state.undo, to = redo ? state.undo : state.redo;
    if (!from.length) { say(redo ? "No stroke to redo." : "No stroke to undo."); return; }
    const snap = from.pop();
    to.push(snapshot(snap.at));
    restoreMarks(state, snap);
    $("spec-name").value = snap.specName;
    if (state.paste && state.copy) copySource.src = sampleURL(state.copy.sample, false, state.version);
    const moved = snap.at !== undefined && snap.at !== state.selected;
    onRestore(snap.at);
    draw(); refreshMarks(state); onStrokeEnd();
    say((redo ? "Stroke redone" : "Stroke undone") + (moved ? ` on sample ${snap.at} (shown now)` : "")
      + (redo ? "." : " (Ctrl+Shift+Z redoes it)."));
  }

  return {
    draw,
    undoStroke,
    remember,
    // Show sample image `url` under the masks.
    showSample(url) { editorImage.src = url; },
    // The copy sample's original pixels, for the paste preview.
    showCopySource(url) { copySource.src = url; },
    setMode(mode) {
      state.mode = mode;
      $("editor-hint").textContent = HINTS[state.mode];
      $("editor-hint").title = HINTS[state.mode];
      if (state.mode === "paste" && state.copy) copySource.src = sampleURL(state.copy.sample, false, state.version);
      draw(); refreshButtons(state);
    },
    setTool(tool) { state.tool = tool; },
    // Clear the current mode's mask on the selected sample (in Paste mode: the placement).
    clearMask() {
      remember();
      if (state.mode === "paste") state.paste = null;
      else if (state.mode === "copy") { if (state.copy && state.copy.sample === state.selected) { state.copy = null; state.paste = null; } }
      else state[state.mode].delete(state.selected);
      draw(); refreshMarks(state); onStrokeEnd();
    },
  };
}
