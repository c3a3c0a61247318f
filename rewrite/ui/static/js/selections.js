// The marks made so far, shown twice: as badges on the gallery tiles and as the #selections list
// (with a warning where a "not here" region overlaps a region the rule should act on); and the
// buttons that act on marks, disabled while there is nothing for them to act on.

import { $ } from "./dom.js";
import { hasMarks, maskEmpty, maskFor, overlap } from "./masks.js";

export function marksOf(state, i) {
  const out = [];
  if (state.copy && state.copy.sample === i && !maskEmpty(state.copy.mask)) out.push("copy");
  if (state.paste && state.paste.sample === i) out.push("paste");
  if (state.context.has(i) && !maskEmpty(state.context.get(i))) out.push("context");
  if (state.erase.has(i) && !maskEmpty(state.erase.get(i))) out.push("erase");
  if (state.preserve.has(i) && !maskEmpty(state.preserve.get(i))) out.push("preserve");
  return out;
}

// "Not here" regions that cover part of a region the rule should act on (context, erase, or
// the copied object): [{sample, what, pixels}]. The edit cannot both act and not act there.
export function overlaps(state) {
  const out = [];
  for (const [i, m] of state.preserve) {
    for (const what of ["context", "erase"]) {
      const n = overlap(m, state[what].get(i));
      if (n) out.push({ sample: i, what, pixels: n });
    }
    if (state.copy && state.copy.sample === i) {
      const n = overlap(m, state.copy.mask);
      if (n) out.push({ sample: i, what: "copy", pixels: n });
    }
  }
  return out;
}
export function overlapText(o) {
  return `"not here" on sample ${o.sample} covers ${o.pixels} px of its ${o.what} region — the rule cannot both act and not act there; erase one of them (Eraser tool)`;
}

export function refreshButtons(state) {
  $("stroke-undo").disabled = !state.undo.length;
  $("stroke-redo").disabled = !state.redo.length;
  $("new-edit").disabled = !hasMarks(state) && !state.loaded && !$("spec-name").value;
  const here = state.mode === "paste" ? state.paste : maskFor(state, state.mode, state.selected, false);
  $("clear-mask").disabled = !here;
}

export function refreshMarks(state) {
  for (const tile of document.querySelectorAll(".tile")) {
    const marks = tile.querySelector(".marks");
    marks.innerHTML = marksOf(state, Number(tile.dataset.sample)).map((m) => `<span class="mark ${m}">${m === "preserve" ? "not here" : m}</span>`).join("");
  }
  const items = [];
  if (state.copy && !maskEmpty(state.copy.mask)) items.push(`copy: sample ${state.copy.sample}`);
  if (state.paste) items.push(`paste: sample ${state.paste.sample}` + (state.paste.spec ? " (as loaded)" : ` moved by (${state.paste.dx}, ${state.paste.dy}) px`));
  for (const [i, m] of state.context) if (!maskEmpty(m)) items.push(`context: sample ${i}`);
  for (const [i, m] of state.erase) if (!maskEmpty(m)) items.push(`erase: sample ${i}`);
  for (const [i, m] of state.preserve) if (!maskEmpty(m)) items.push(`not here: sample ${i}`);
  const list = $("selections");
  list.innerHTML = "";
  for (const t of items) { const li = document.createElement("li"); li.textContent = t; list.appendChild(li); }
  for (const o of overlaps(state)) {
    const li = document.createElement("li"); li.className = "overlap"; li.textContent = `⚠ ${overlapText(o)}`; list.appendChild(li);
  }
  if (!items.length) list.innerHTML = `<li class="none">no marks yet</li>`;
  refreshButtons(state);
}
