// Editing the model. The edit being made has one kind (copy-paste or erase, shown in #edit-title);
// "New edit" clears its marks (Ctrl+Z brings them back). Apply posts the spec of that kind only,
// then follows the job (api/job): its phase and progress in the #job bar with a Cancel button, on
// every page, also one opened while the job runs. Applying again after adjusting the marks
// replaces the edit they made (state.applied) instead of stacking a second one. Undo edit and
// Reset (confirmed) change the applied edits. Each step is reported in #status and #message and
// followed by fresh images and the list of applied edits. Exports (main.js) check that there
// is something to export.

import { api } from "./api.js";
import { $ } from "./dom.js";
import { hideJob, setBusy, showJob } from "./jobbar.js";
import { hasMarks } from "./masks.js";
import { fail, say, status } from "./messages.js";
import { refreshMarks } from "./selections.js";
import { buildSpec } from "./specs.js";

const MODES = { "copy-paste": ["copy", "paste", "context", "preserve"], erase: ["erase", "preserve"] };
const TITLES = { "copy-paste": "copy-paste edit", erase: "erase edit" };

// `history` (history.js) lists the applied edits; `goal` (goal.js) shows a copy-paste edit's goal
// again with its edited target after Apply, when its panel is open; `editor` (canvas.js).
export function createEdits(state, gallery, { history, goal, editor, heat }) {
  // The kind of the edit being made: its title, and only its marking modes.
  function showKind() {
    const adjusting = state.applied !== null && state.applied !== undefined;
    $("edit-title").textContent = adjusting ? `Adjusting edit ${state.applied.index + 1} (${TITLES[state.kind]})` : `New ${TITLES[state.kind]}`;
    for (const r of document.querySelectorAll("input[name=kind]")) r.checked = r.value === state.kind;
    for (const r of document.querySelectorAll("input[name=mode]")) r.parentElement.hidden = !MODES[state.kind].includes(r.value);
    $("units-label").hidden = state.kind !== "erase";
    if (!MODES[state.kind].includes(state.mode)) {
      const mode = MODES[state.kind][0];
      document.querySelector(`input[name=mode][value=${mode}]`).checked = true;
      editor.setMode(mode);
    }
  }
  // Start a new edit of `kind`: every mark, the loaded spec and its name are cleared, as one
  // step that stroke undo (Ctrl+Z) takes back. `quiet`: a spec is being loaded (it says so).
  function newEdit(kind = state.kind, quiet = false) {
    const had = hasMarks(state) || state.loaded;
    if (had) editor.remember();
    state.kind = kind;
    state.copy = null; state.paste = null; state.context = new Map(); state.erase = new Map(); state.preserve = new Map();
    state.loaded = null; state.strength = 1; state.applied = null;
    $("spec-name").value = ""; $("spec-list").value = "";
    if (state.heat) heat.hide(true);
    goal.clear();
    if (!quiet) say(`New ${TITLES[kind]}: no marks yet.` + (had ? " The previous marks are cleared (Ctrl+Z or ↶ Stroke brings them back)." : ""));
    showKind(); editor.draw(); refreshMarks(state);
    return !!had;
  }
  // Switch the kind of the edit being made; the marks that belong to the other kind are dropped.
  function setKind(kind) {
    if (kind === state.kind) return;
    editor.remember();
    const dropped = kind === "erase" ? (state.copy ? 1 : 0) + (state.paste ? 1 : 0) + state.context.size : state.erase.size;
    if (kind === "erase") { state.copy = null; state.paste = null; state.context = new Map(); } else state.erase = new Map();
    if (state.loaded) state.loaded = { ...state.loaded, kind };
    state.kind = kind;
    showKind(); editor.draw(); refreshMarks(state);
    say(`This is now an ${TITLES[kind]}.` + (dropped ? ` ${dropped} mark(s) of the other kind were cleared (Ctrl+Z brings them back).` : ""));
  }

  let watching = false;
  function jobText(job) {
    const secs = `${Math.round(Date.now() / 1000 - job.started)} s`;
    if (job.kind === "solve-together") return `${job.phase === "cancelling" ? "cancelling" : "solving"} the edits of ${job.layer} together: ${job.phase || "starting"} · ${secs}`;
    const what = `${job.kind || "edit"}${job.name ? ` '${job.name}'` : ""}${job.layer ? ` at ${job.layer}` : ""}`;
    return `${job.phase === "cancelling" ? "cancelling" : "applying"} ${what}: ${job.phase || "starting"} · ${secs}`;
  }
  // Follow the running job until it ends. `spec`: the one this page applied (null for a job
  // started elsewhere, or before this page was loaded); `old`: the applied edit it replaces
  // ({index, strength}, switched off while the job runs), or null.
  async function watch(spec = null, old = null) {
    if (watching) return;
    watching = true;
    setBusy(state, true);
    try {
      for (;;) {
        const job = await api("api/job");
        if (job.state === "running") {
          showJob(jobText(job), job.total ? job.done / job.total : null);
          status(jobText(job), "running");
          await new Promise((r) => setTimeout(r, 200));
          continue;
        }
        hideJob();
        if (job.layer && job.kind !== "solve-together") $("layer").value = job.layer;
        if (job.state !== "done" && old) {
          // The new version did not come: the one it was to replace is switched on again.
          const res = await api(`api/edits/${old.index}/strength`, { method: "POST", body: JSON.stringify({ strength: old.strength }) });
          state.version = res.version;
        }
        if (job.state === "failed") { status("edit failed", "failed"); say(job.message + (old ? `\nEdit ${old.index + 1} stays as it was.` : ""), "error"); break; }
        if (job.state === "cancelled") {
          status("cancelled", "");
          say(job.kind === "solve-together" ? "Solving together cancelled: the applied edits are as before."
            : "Edit cancelled: the model and the applied edits are as before.");
          break;
        }
        if (job.kind === "solve-together") {
          state.version = job.version;
          await history.refresh();
          status("solved together", "done");
          say(`The edits of ${job.layer} were solved again together.`);
          gallery.refresh();
          break;
        }
        let version = job.version, count = job.edits;
        if (old) {
          const res = await api(`api/edits/${old.index}`, { method: "DELETE" });
          version = res.version; count = res.edits.length;
        }
        state.version = version;
        if (spec) { state.applied = { index: count - 1 }; showKind(); }
        // The edit list first (exports and Undo read it), then the news that it is applied.
        await history.refresh();
        status(`applied (${count} edit${count === 1 ? "" : "s"})`, "done");
        const warnings = job.warnings || [];
        const replaced = old ? ` It replaces the earlier version of this edit (edit ${old.index + 1}).` : "";
        const next = spec ? " The marks stay: adjust them and Apply again to replace this edit, or start a New edit."
          : " (It was started before this page was opened: this page has no marks of it.)";
        say([job.message + "." + replaced + next, ...warnings].join("\n"), warnings.length ? "warn" : "info");
        state.edited = true; $("show-edited").checked = true;
        if (state.heat) heat.hide(true);      // the overlay would hide what changed
        gallery.refresh();
        if (spec && spec.kind === "copy-paste" && goal.isOpen()) goal.preview(true, spec);
        break;
      }
    } catch (e) { status("", ""); fail(e); history.refresh(); } finally { watching = false; setBusy(state, false); hideJob(); }
  }
  // The applied edit that the current marks made (to be replaced by Apply), or null.
  function adjusting() {
    const a = state.applied;
    return a && a.index < state.edits.length ? { index: a.index, strength: state.edits[a.index].strength } : null;
  }
  async function apply() {
    let spec;
    try { spec = buildSpec(state); } catch (e) { fail(e); return; }
    const old = adjusting();
    if (old && old.strength !== 1) spec.strength = old.strength;       // the strength it was given
    setBusy(state, true);                                              // no second Apply meanwhile
    try {
      if (old) {
        // Switched off while the new version is solved (so that it is solved without it);
        // removed when that is applied, switched on again if it fails or is cancelled.
        const res = await api(`api/edits/${old.index}/strength`, { method: "POST", body: JSON.stringify({ strength: 0 }) });
        state.version = res.version;
      }
      try {
        await api("api/apply", { method: "POST", body: JSON.stringify(spec) });
      } catch (e) {
        if (old) await api(`api/edits/${old.index}/strength`, { method: "POST", body: JSON.stringify({ strength: old.strength }) });
        throw e;
      }
      say(`Computing the ${TITLES[spec.kind]} at ${spec.layer}` + (old ? `, to replace edit ${old.index + 1}` : "")
        + " (statistics are computed once per layer; the first edit on a layer takes longer).");
      await watch(spec, old);
    } catch (e) { status("", ""); fail(e); setBusy(state, false); history.refresh(); }
  }
  async function cancel() {
    try { await api("api/cancel", { method: "POST" }); $("job-text").textContent = "cancelling…"; } catch (e) { fail(e); }
  }
  // which: "undo" (the last edit) or "reset" (all edits, after a confirmation).
  async function undoOrReset(which) {
    if (which === "reset" && state.edits.length && !window.confirm(`Undo all ${state.edits.length} applied edit(s) and go back to the original model?`)) return;
    try {
      const res = await api(`api/${which}`, { method: "POST" });
      state.version = res.version;
      if (state.applied && state.applied.index >= res.edits) { state.applied = null; showKind(); }
      status(`${which === "undo" ? "undone" : "reset"} (${res.edits} edit${res.edits === 1 ? "" : "s"} left)`, "done");
      say(which === "undo" ? "Last applied edit undone (your marks are unchanged)." : "All edits undone: the original model.");
      gallery.refresh();
      history.refresh();
    } catch (e) { fail(e); }
  }
  return { apply, watch, cancel, undoOrReset, newEdit, setKind, showKind };
}
