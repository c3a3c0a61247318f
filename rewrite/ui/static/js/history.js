// The applied edits (api/edits), oldest first: what each is, its solver and predicted collateral,
// a strength slider (0..2; the model is re-weighted W0 + Σ s·ΔW when the slider is released, no
// new solve) and a remove button (the later edits stay); with two or more, their total. The list
// is updated in place, so a slider moved by the arrow keys keeps the focus; strength changes are
// sent one at a time, the latest value of each slider last. A high-collateral warning, or a
// refused change, goes to #message (in view at the top). Solving a layer's edits together runs as
// the job: its bar, Cancel, and the controls locked meanwhile.

import { api } from "./api.js";
import { $ } from "./dom.js";
import { hideJob, setBusy, showJob } from "./jobbar.js";
import { fail, say, status } from "./messages.js";

export function editLabel(e) { return `${e.name || e.kind || "edit"} · ${e.layer}`; }

function collateralText(c) { return c === null || c === undefined ? "collateral n/a" : `collateral ${c.toFixed(3)}`; }
// The image change outside the rule's region (mean pixel change on fixed samples, at this strength).
function visibleText(v) { return v === null || v === undefined ? "" : `; visible change elsewhere ≈ ${v.toFixed(3)}`; }

export function createHistory(state, gallery) {
  const pending = new Map();      // edit index -> strength waiting to be sent
  let sending = false;

  function item(e) {
    const li = document.createElement("li");
    li.dataset.index = e.index;
    const name = document.createElement("span");
    name.className = "edit-name";
    const meta = document.createElement("span");
    meta.className = "edit-meta";
    const controls = document.createElement("span");
    controls.className = "edit-controls";
    const slider = document.createElement("input");
    slider.type = "range"; slider.min = "0"; slider.max = "2"; slider.step = "0.05"; slider.className = "strength";
    slider.setAttribute("aria-label", `strength of edit ${e.index + 1}`);
    slider.title = "From local (left: the edit weaker, fewer other pixels change) to strong (right)";
    const value = document.createElement("output");
    value.className = "strength-value";
    slider.addEventListener("input", () => { value.textContent = Number(slider.value).toFixed(2); });
    slider.addEventListener("change", () => { pending.set(e.index, Number(slider.value)); flush(); });
    const remove = document.createElement("button");
    remove.type = "button"; remove.className = "remove"; remove.textContent = "Remove";
    remove.title = "Remove this edit (the later ones stay)";
    remove.setAttribute("aria-label", `remove edit ${e.index + 1}`);
    remove.addEventListener("click", () => removeEdit(e.index));
    controls.append("local", slider, "strong", value, remove);
    li.append(name, meta, controls);
    return li;
  }
  // Fill an item with edit e's figures; a slider being moved keeps the value under the hand.
  function fill(li, e) {
    li.classList.toggle("warn", e.warnings.length > 0);
    li.querySelector(".edit-name").textContent = editLabel(e);
    const meta = li.querySelector(".edit-meta");
    meta.textContent = `${e.method}, predicted ${collateralText(e.collateral)}${visibleText(e.visible)}`;
    meta.title = e.warnings.join("\n");
    if (!pending.has(e.index)) {
      li.querySelector("input.strength").value = String(e.strength);
      li.querySelector("output.strength-value").textContent = e.strength.toFixed(2);
    }
  }
  function render(edits) {
    state.edits = edits;
    const list = $("edit-list");
    $("no-edits").hidden = edits.length > 0;
    const key = edits.map((e) => `${e.index}:${e.layer}`).join(",");
    if (list.dataset.key !== key) {
      list.innerHTML = "";
      for (const e of edits) list.appendChild(item(e));
      list.dataset.key = key;
    }
    edits.forEach((e, i) => fill(list.children[i], e));
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
      b.addEventListener("click", () => solveTogether(layer, n));
      together.appendChild(b);
    }
    // Their sum: the total predicted change elsewhere of all the applied edits (cross terms aside).
    const total = $("edits-total");
    total.hidden = edits.length < 2;
    if (edits.length >= 2) {
      const known = (k) => edits.every((e) => typeof e[k] === "number");
      const sum = (k) => edits.reduce((s, e) => s + e[k], 0);
      total.textContent = `All ${edits.length} edits together: predicted ${known("collateral") ? `collateral ${sum("collateral").toFixed(3)} (sum)` : "collateral n/a"}`
        + (known("visible") ? `; visible change elsewhere ≈ ${sum("visible").toFixed(3)} (sum)` : "");
    }
    setBusy(state, state.busy);
  }
  async function refresh() {
    try { render(await api("api/edits")); } catch (e) { fail(e); }
  }
  // Send the waiting strengths one at a time (a slider moved by the keys sends its last value).
  async function flush() {
    if (sending) return;
    sending = true;
    try {
      while (pending.size) {
        const [i, s] = pending.entries().next().value;
        await setStrength(i, s);
        if (pending.get(i) === s) pending.delete(i);
      }
    } finally { sending = false; }
  }
  async function setStrength(i, s) {
    try {
      status("re-weighting…", "running");
      const res = await api(`api/edits/${i}/strength`, { method: "POST", body: JSON.stringify({ strength: s }) });
      state.version = res.version;
      if (pending.get(i) === s) pending.delete(i);
      render(res.edits);
      status(`strength ${s.toFixed(2)}`, "done");
      const w = res.edit.warnings;
      say(w.length ? w.join("\n") : `Edit ${i + 1} (${editLabel(res.edit)}) now at strength ${s.toFixed(2)}; ${collateralText(res.edit.collateral)}${visibleText(res.edit.visible)}.`, w.length ? "warn" : "info");
      gallery.refresh();
    } catch (e) {
      pending.delete(i);
      status(`strength of edit ${i + 1} not changed`, "failed");
      say(`The strength of edit ${i + 1} was not changed: ${e.message}`, "error");
      refresh();
    }
  }
  async function removeEdit(i) {
    try {
      const res = await api(`api/edits/${i}`, { method: "DELETE" });
      state.version = res.version;
      if (state.applied) {
        if (state.applied.index === i) state.applied = null;
        else if (state.applied.index > i) state.applied.index -= 1;
      }
      render(res.edits);
      status(`removed (${res.edits.length} edit${res.edits.length === 1 ? "" : "s"} left)`, "done");
      say(`Edit ${i + 1} removed; the others stay applied.`);
      gallery.refresh();
      onChange();
    } catch (e) { fail(e); refresh(); }
  }
  async function solveTogether(layer, n) {
    const t0 = Date.now();
    let phase = "solving";
    setBusy(state, true);
    const tick = () => showJob(`solving the ${n} edits of ${layer} together: ${phase} · ${Math.round((Date.now() - t0) / 1000)} s`, null);
    tick();
    status("solving together…", "running");
    const timer = setInterval(async () => {
      try { const job = await api("api/job"); if (job.state === "running") phase = job.phase || phase; } catch (_) { /* shown when the solve ends */ }
      tick();
    }, 250);
    try {
      const res = await api("api/edits/solve-together", { method: "POST", body: JSON.stringify({ layer }) });
      state.version = res.version;
      render(res.edits);
      status("solved together", "done");
      say(`The ${n} edits of ${layer} were solved again together: each keeps its effect without spoiling the others.`);
      gallery.refresh();
    } catch (e) {
      const cancelled = /cancelled/.test(e.message);
      status(cancelled ? "cancelled" : "solve failed", cancelled ? "" : "failed");
      say(cancelled ? "Solving together cancelled: the applied edits are as before." : e.message, cancelled ? "info" : "error");
      refresh();
    } finally { clearInterval(timer); hideJob(); setBusy(state, false); }
  }
  // `onChange`: the page's hook after the list of applied edits changed (set by main.js).
  let onChange = () => {};
  return { refresh, render, setOnChange(f) { onChange = f; } };
}
