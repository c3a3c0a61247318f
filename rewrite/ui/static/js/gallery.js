// The gallery: one page of sample tiles (edited or original, or both side by side), their labels,
// heat overlays and mark badges, the pager label, and selecting a sample for the editor (by
// mouse, or by keyboard: each tile is a button in the tab order, Enter or Space selects it).

import { sampleURL } from "./api.js";
import { $ } from "./dom.js";
import { heatCanvas } from "./heatmap.js";
import { refreshButtons, refreshMarks } from "./selections.js";

export function createGallery(state, editor) {
  // The samples on show: the current page, or the best matches when sorted.
  function samples() {
    if (state.order) return state.order.slice(0, state.perPage);
    const start = state.page * state.perPage;
    return Array.from({ length: state.perPage }, (_, i) => start + i);
  }
  function render() {
    const g = $("gallery");
    g.innerHTML = "";
    for (const i of samples()) {
      const tile = document.createElement("div");
      tile.className = "tile" + (i === state.selected ? " selected" : "");
      tile.dataset.sample = i;
      tile.tabIndex = 0;
      tile.setAttribute("role", "button");
      tile.setAttribute("aria-label", `sample ${i}`);
      tile.setAttribute("aria-pressed", String(i === state.selected));
      const imgs = document.createElement("div");
      imgs.className = "imgs";
      const views = state.side ? [false, true] : [state.edited];
      for (const edited of views) {
        const img = document.createElement("img");
        img.width = img.height = state.tile;
        img.alt = `sample ${i}${state.side ? (edited ? " edited" : " original") : ""}`;
        img.src = sampleURL(i, edited, state.version);
        if (state.side) {
          // Before and after, each captioned.
          const fig = document.createElement("figure");
          const cap = document.createElement("figcaption");
          cap.className = "view-label"; cap.textContent = edited ? "after" : "before";
          fig.append(img, cap);
          imgs.appendChild(fig);
        } else imgs.appendChild(img);
      }
      tile.appendChild(imgs);
      const label = document.createElement("span");
      label.className = "label";
      label.textContent = `#${i}` + (state.heat && state.heat.has(i) ? ` ${state.heat.get(i).score.toFixed(2)}` : "");
      tile.appendChild(label);
      const marks = document.createElement("span");
      marks.className = "marks";
      tile.appendChild(marks);
      if (state.heat && state.heat.has(i)) tile.appendChild(heatCanvas(state.heat.get(i).heat, state.tile));
      tile.addEventListener("click", () => select(i));
      tile.addEventListener("keydown", (ev) => {
        if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); select(i); }
      });
      g.appendChild(tile);
    }
    $("page-label").textContent = state.order ? `best matches` : `samples ${state.page * state.perPage}–${state.page * state.perPage + state.perPage - 1}`;
    refreshMarks(state);
  }
  function select(i) {
    state.selected = i;
    $("editor-index").textContent = i;
    editor.showSample(sampleURL(i, state.edited, state.version));
    $("goto").value = i;
    for (const t of document.querySelectorAll(".tile")) {
      t.classList.toggle("selected", Number(t.dataset.sample) === i);
      t.setAttribute("aria-pressed", String(Number(t.dataset.sample) === i));
    }
    editor.draw(); refreshButtons(state);
  }
  // Select sample i, turning to its page first when it is not on show.
  function show(i) {
    if (!samples().includes(i)) { state.order = null; state.page = Math.floor(i / state.perPage); render(); }
    select(i);
  }
  // New images everywhere (after an edit, undo, or the edited/original switch).
  function refresh() { render(); select(state.selected); }
  return { samples, render, select, show, refresh };
}
