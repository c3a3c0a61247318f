// Editing the model: Apply (post the spec, then poll api/job until the edit is done or failed),
// Undo and Reset, each reported in #status and #message (with the edit's warnings, such as a high
// predicted collateral) and followed by fresh images and the list of applied edits.
// (The downloads are plain links in index.html: api/export/checkpoint and api/export/delta.)

import { api } from "./api.js";
import { $ } from "./dom.js";
import { fail, say, status } from "./messages.js";
import { buildSpec } from "./specs.js";

// `history` (history.js) lists the applied edits; `goal` (goal.js) shows a copy-paste edit's goal
// again with its edited target after Apply, when its panel is open.
export function createEdits(state, gallery, { history, goal }) {
  async function apply() {
    let spec;
    try { spec = buildSpec(state); } catch (e) { fail(e); return; }
    $("apply").disabled = true;
    try {
      await api("api/apply", { method: "POST", body: JSON.stringify(spec) });
      status("applying…", "running");
      say("Computing the edit (statistics are computed once per layer; the first edit on a layer takes longer).");
      for (;;) {
        await new Promise((r) => setTimeout(r, 150));
        const job = await api("api/job");
        if (job.state === "running") { status(`applying… ${Math.round(Date.now() / 1000 - job.started)} s`, "running"); continue; }
        if (job.state === "failed") { status("edit failed", "failed"); say(job.message, "error"); break; }
        state.version = job.version;
        status(`applied (${job.edits} edit${job.edits === 1 ? "" : "s"})`, "done");
        const warnings = job.warnings || [];
        say([job.message + " — the gallery shows the edited model.", ...warnings].join("\n"), warnings.length ? "warn" : "info");
        state.edited = true; $("show-edited").checked = true;
        gallery.refresh();
        history.refresh();
        if (spec.kind === "copy-paste" && goal.isOpen()) goal.preview(true, spec);
        break;
      }
    } catch (e) { status("", ""); fail(e); } finally { $("apply").disabled = false; }
  }
  // which: "undo" (the last edit) or "reset" (all edits).
  async function undoOrReset(which) {
    try {
      const res = await api(`api/${which}`, { method: "POST" });
      state.version = res.version;
      status(`${which === "undo" ? "undone" : "reset"} (${res.edits} edit${res.edits === 1 ? "" : "s"} left)`, "done");
      say(which === "undo" ? "Last edit undone." : "All edits undone: the original model.");
      gallery.refresh();
      history.refresh();
    } catch (e) { fail(e); }
  }
  return { apply, undoOrReset };
}
