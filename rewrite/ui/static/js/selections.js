// The marks made so far, shown twice: as badges on the gallery tiles and as the #selections list.

import { $ } from "./dom.js";
import { maskEmpty } from "./masks.js";

export function marksOf(state, i) {
  const out = [];
  if (state.copy && state.copy.sample === i && !maskEmpty(state.copy.mask)) out.push("copy");
  if (state.paste && state.paste.sample === i) out.push("paste");
  if (state.context.has(i) && !maskEmpty(state.context.get(i))) out.push("context");
  if (state.erase.has(i) && !maskEmpty(state.erase.get(i))) out.push("erase");
  if (state.preserve.has(i) && !maskEmpty(state.preserve.get(i))) out.push("preserve");
  return out;
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
  $("selections").innerHTML = items.length ? items.map((t) => `<li>${t}</li>`).join("") : `<li class="none">no marks yet</li>`;
}
