// The goal preview (api/goal): what the marked edit asks of its layer before any solve — the copy
// source, the paste target, the pasted request and the goal rendered through the rest of the
// network — with notes (e.g. that this layer cannot show the object). After a copy-paste Apply,
// while the panel is open, it is shown again with the edited paste target (solved=1). "Before
// solving" is the model without the edit: for marks that made the last applied edit, the panel
// is built as for solved=1 (the model before that edit, then the edited target), not on the model
// that already has it. A new edit or another spec clears the panel.

import { api } from "./api.js";
import { $ } from "./dom.js";
import { fail } from "./messages.js";
import { buildSpec } from "./specs.js";

export function createGoal(state) {
  // `spec`: the spec to show (default: the one the marks describe); `solved`: it is the last
  // applied edit, and the panel ends with its edited paste target.
  async function preview(solved = false, spec = null) {
    try { spec = spec || buildSpec(state); } catch (e) { fail(e); return; }
    $("goal-state").textContent = "rendering…";
    $("goal-preview").disabled = true;
    const post = (s) => api(`api/goal${s ? "?solved=1" : ""}`, { method: "POST", body: JSON.stringify(spec) });
    try {
      let res;
      const applied = state.applied && state.applied.index === state.edits.length - 1;
      if (!solved && applied) {
        // The marks' own edit is applied: show its target before it (and as it is now).
        try { res = await post(true); } catch (_) { res = await post(false); }
      } else res = await post(solved);
      $("goal-img").src = res.png;
      $("goal-layer").textContent = res.layer;
      $("goal-notes").innerHTML = "";
      for (const n of res.notes) {
        const li = document.createElement("li");
        li.textContent = n;
        if (n.startsWith("warning")) li.className = "warn";
        $("goal-notes").appendChild(li);
      }
      $("goal-state").textContent = res.edited ? "(before solving, and the edited target)" : "(before solving)";
      $("goal-panel").hidden = false;
    } catch (e) { $("goal-state").textContent = ""; fail(e); } finally { $("goal-preview").disabled = false; }
  }
  function hide() { $("goal-panel").hidden = true; }
  function clear() { hide(); $("goal-img").removeAttribute("src"); $("goal-notes").innerHTML = ""; $("goal-state").textContent = ""; $("goal-layer").textContent = ""; }
  function isOpen() { return !$("goal-panel").hidden; }
  return { preview, hide, clear, isOpen };
}
