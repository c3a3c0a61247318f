// The applied edits (api/edits), oldest first: what each is, its solver and predicted collateral,
// a strength slider (0..2; the model is re-weighted W0 + Σ s·ΔW when the slider is released, no
// new solve) and a remove button (the later edits stay). A high-collateral warning goes to #message.

import { api } from "./api.js";
import { $ } from "./dom.js";
import { fail, say, status } from "./messages.js";

export function editLabel(e) { return `${e.name || e.kind || "edit"} · ${e.layer}`; }

function collateralText(c) { return c === null || c === undefined ? "collateral n/a" : `collateral ${c.toFixed(3)}`; }
// The image change outside the rule's region (mean pixel change on fixed samples, at this strength).
function visibleText(v) { return v === null || v === undefined ? "" : `; visible change elsewhere ≈ ${v.toFixed(3)}`; }

export function createHistory(state, gallery) {
  function render(edits) {
    state.edits = edits;
    const list = $("edit-list");
    list.innerHTML = "";
    $("no-edits").hidden = edits.length > 0;
    // Layers with two or more applied edits can be solved again together.
    const counts = {};
    for (const e of edits) counts[e.layer] = (counts[e.layer] || 0) + 1;
    const together = $("solve-together");
    together.innerHTML = "";
    for (const [layer, n] of Object.entries(counts)) {
      if (n < 2) continue;
      const b = document.createElement("button");
      b.type = "button"; b.textContent = `Solve the ${n} edits of ${layer} together`;
      b.title = "One joint solve, so that no edit of this layer spoils another (each keeps its strength)";
      b.addEventListener("click", () => solveTogether(layer));
      together.appendChild(b);
    }
    for (const e of edits) {
      const li = document.createElement("li");
      li.dataset.index = e.index;
      li.classList.toggle("warn", e.warnings.length > 0);
      const name = document.createElement("span");
      name.className = "edit-name"; name.textContent = editLabel(e);
      const meta = document.createElement("span");
      meta.className = "edit-meta";
      meta.textContent = `${e.method}, predicted ${collateralText(e.collateral)}${visibleText(e.visible)}`;
      if (e.warnings.length) meta.title = e.warnings.join("\n");
      const controls = document.createElement("span");
      controls.className = "edit-controls";
      const slider = document.createElement("input");
      slider.type = "range"; slider.min = "0"; slider.max = "2"; slider.step = "0.05";
      slider.value = String(e.strength); slider.className = "strength";
      slider.setAttribute("aria-label", `strength of edit ${e.index + 1}`);
      const value = document.createElement("output");
      value.className = "strength-value"; value.textContent = e.strength.toFixed(2);
      slider.addEventListener("input", () => { value.textContent = Number(slider.value).toFixed(2); });
      slider.addEventListener("change", () => setStrength(e.index, Number(slider.value)));
      const remove = document.createElement("button");
      remove.type = "button"; remove.className = "remove"; remove.textContent = "Remove";
      remove.title = "Remove this edit (the later ones stay)";
      remove.addEventListener("click", () => removeEdit(e.index));
      slider.title = "From local (left: the edit weaker, fewer other pixels change) to strong (right)";
      controls.append("local", slider, "strong", value, remove);
      li.append(name, meta, controls);
      list.appendChild(li);
    }
  }
  async function refresh() {
    try { render(await api("api/edits")); } catch (e) { fail(e); }
  }
  async function setStrength(i, s) {
    try {
      status("re-weighting…", "running");
      const res = await api(`api/edits/${i}/strength`, { method: "POST", body: JSON.stringify({ strength: s }) });
      state.version = res.version;
      render(res.edits);
      status(`strength ${s.toFixed(2)}`, "done");
      const w = res.edit.warnings;
      say(w.length ? w.join("\n") : `Edit ${i + 1} (${editLabel(res.edit)}) now at strength ${s.toFixed(2)}; ${collateralText(res.edit.collateral)}${visibleText(res.edit.visible)}.`, w.length ? "warn" : "info");
      gallery.refresh();
    } catch (e) { status("", ""); fail(e); refresh(); }
  }
  async function removeEdit(i) {
    try {
      const res = await api(`api/edits/${i}`, { method: "DELETE" });
      state.version = res.version;
      render(res.edits);
      status(`removed (${res.edits.length} edit${res.edits.length === 1 ? "" : "s"} left)`, "done");
      say(`Edit ${i + 1} removed; the others stay applied.`);
      gallery.refresh();
    } catch (e) { fail(e); refresh(); }
  }
  async function solveTogether(layer) {
    try {
      status("solving together…", "running");
      const res = await api("api/edits/solve-together", { method: "POST", body: JSON.stringify({ layer }) });
      state.version = res.version;
      render(res.edits);
      status("solved together", "done");
      say(`The edits of ${layer} were solved again together: each keeps its effect without spoiling the others.`);
      gallery.refresh();
    } catch (e) { status("", ""); fail(e); refresh(); }
  }
  return { refresh, render };
}
