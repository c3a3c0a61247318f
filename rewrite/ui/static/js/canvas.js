// The mask editor: draws the selected sample with its masks tinted, the placed paste and the
// rectangle being dragged, and turns mouse input into marks (brush, eraser, rectangle, paste drag).

import { $ } from "./dom.js";
import { say } from "./messages.js";
import { sampleURL } from "./api.js";
import { bbox, fillRect, maskEmpty, maskFor, newMask, paint, tinted } from "./masks.js";
import { refreshMarks } from "./selections.js";

const COLOURS = { copy: [43, 108, 223], context: [30, 158, 74], erase: [210, 60, 60], preserve: [224, 138, 0] };
const HINTS = {
  copy: "paint the object to copy", paste: "click another sample, then drag to place the object",
  context: "paint where the rule should apply (a few samples)", erase: "paint what to remove (a few samples)",
  preserve: "paint where the rule must not act (any samples)",
};

// `onStrokeEnd` runs after each finished stroke, rectangle or paste drag.
export function createEditor(state, { onStrokeEnd }) {
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
      if (m) ctx.drawImage(tinted(m, COLOURS[mode], 0.45, state.res), 0, 0, canvas.width, canvas.height);
    }
    if (state.paste && state.paste.sample === state.selected && state.copy) {
      const b = bbox(state.copy.mask);
      if (b && copySource.complete && copySource.naturalWidth) {
        // The copied object (source pixels under the copy mask) at the paste position.
        const patch = newMask(state.res), g = patch.getContext("2d");
        g.drawImage(copySource, 0, 0, state.res, state.res);
        g.globalCompositeOperation = "destination-in";
        g.drawImage(state.copy.mask, 0, 0);
        ctx.drawImage(patch, b.x, b.y, b.w, b.h, state.paste.x * k, state.paste.y * k, b.w * k, b.h * k);
        ctx.strokeStyle = "rgb(138,75,214)"; ctx.lineWidth = 2;
        ctx.strokeRect(state.paste.x * k, state.paste.y * k, b.w * k, b.h * k);
      }
    }
    if (state.drawing && state.drawing.rect) {
      const { a, b } = state.drawing.rect;
      ctx.strokeStyle = "#ff0"; ctx.lineWidth = 1;
      ctx.strokeRect(Math.min(a.x, b.x) * k, Math.min(a.y, b.y) * k, (Math.abs(b.x - a.x) + 1) * k, (Math.abs(b.y - a.y) + 1) * k);
    }
  }
  function toPixel(ev) {
    const r = canvas.getBoundingClientRect();
    return { x: Math.floor((ev.clientX - r.left) / r.width * state.res), y: Math.floor((ev.clientY - r.top) / r.height * state.res) };
  }
  function brush(mask, p) { paint(mask, p.x, p.y, Number($("brush-size").value), state.tool === "eraser"); }
  function placePaste(p) {
    if (!state.copy || maskEmpty(state.copy.mask)) { say("Mark an object in Copy mode first.", "error"); return; }
    if (state.selected === state.copy.sample) { say("Paste onto another sample: click one in the gallery.", "error"); return; }
    const b = bbox(state.copy.mask);
    state.paste = { sample: state.selected, x: Math.round(p.x - b.w / 2), y: Math.round(p.y - b.h / 2), w: b.w, h: b.h };
  }

  canvas.addEventListener("mousedown", (ev) => {
    const p = toPixel(ev);
    if (state.mode === "paste") { placePaste(p); state.drawing = { paste: true }; draw(); refreshMarks(state); return; }
    const mask = maskFor(state, state.mode, state.selected, true);
    if (state.tool === "rect") state.drawing = { rect: { a: p, b: p }, mask };
    else { state.drawing = { mask }; brush(mask, p); }
    draw();
  });
  canvas.addEventListener("mousemove", (ev) => {
    if (!state.drawing) return;
    const p = toPixel(ev);
    if (state.drawing.paste) placePaste(p);
    else if (state.drawing.rect) state.drawing.rect.b = p;
    else brush(state.drawing.mask, p);
    draw();
  });
  window.addEventListener("mouseup", () => {
    if (!state.drawing) return;
    if (state.drawing.rect) fillRect(state.drawing.mask, state.drawing.rect.a, state.drawing.rect.b, false);
    state.drawing = null;
    draw(); refreshMarks(state); onStrokeEnd();
  });

  return {
    draw,
    // Show sample image `url` under the masks.
    showSample(url) { editorImage.src = url; },
    // The copy sample's original pixels, for the paste preview.
    showCopySource(url) { copySource.src = url; },
    setMode(mode) {
      state.mode = mode;
      $("editor-hint").textContent = HINTS[state.mode];
      if (state.mode === "paste" && state.copy) copySource.src = sampleURL(state.copy.sample, false, state.version);
      draw();
    },
    setTool(tool) { state.tool = tool; },
    // Clear the current mode's mask on the selected sample (in Paste mode: the placement).
    clearMask() {
      if (state.mode === "paste") state.paste = null;
      else if (state.mode === "copy") { if (state.copy && state.copy.sample === state.selected) state.copy = null; }
      else state[state.mode].delete(state.selected);
      draw(); refreshMarks(state);
    },
  };
}
