// Editing the model: Apply (post the spec, then poll api/job until the edit is done or failed),
// Undo and Reset, each reported in #status and #message and followed by fresh images.
// (The downloads are plain links in index.html: api/export/checkpoint and api/export/delta.)

import { api } from "./api.js";
import { $ } from "./dom.js";
import { fail, say, status } from "./messages.js";
import { buildSpec } from "./specs.js";

export function createEdits(state, gallery) {
  async function apply() {
    let spec;
    try { spec = buildSpec(state); } catch (e) { fail(e); return; }
    $("apply").disabled = true;
    try {
      await api("api/apply", { method: "POST", body: JSON.stringify(spec) });
      status("applying…", "running");
      say("Computing the edit (statistics are computed once per layer; the first edit on a layer takes longer).");
      for (;;) {
        await new Promise((r) => setTimeout(r, 300));
        const job = await api("api/job");
        if (job.state === "running") { status(`applying… ${Math.round(Date.now() / 1000 - job.started)} s`, "running"); continue; }
        if (job.state === "failed") { status("edit failed", "failed"); say(job.message, "error"); break; }
        state.version = job.version;
        status(`applied (${job.edits} edit${job.edits === 1 ? "" : "s"})`, "done");
        say(job.message + " — the gallery shows the edited model.");
        state.edited = true; $("show-edited").checked = true;
        gallery.refresh();
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
    } catch (e) { fail(e); }
  }
  return { apply, undoOrReset };
}
