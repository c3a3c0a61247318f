// The goal preview (api/goal): what the marked edit asks of its layer before any solve — the copy
// source, the paste target, the pasted request and the goal rendered through the rest of the
// network — with notes (e.g. that this layer cannot show the object). After a copy-paste Apply,
// while the panel is open, it is shown again with the edited paste target (solved=1).

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
    try {
      const res = await api(`api/goal${solved ? "?solved=1" : ""}`, { method: "POST", body: JSON.stringify(spec) });
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
  function isOpen() { return !$("goal-panel").hidden; }
  return { preview, hide, isOpen };
}
