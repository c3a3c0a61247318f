// Editing the model. The edit being made has one kind (copy-paste or erase, shown in #edit-title);
// "New edit" clears its marks. Apply posts the spec of that kind only, then follows the job
// (api/job): its phase and progress in the #job bar with a Cancel button, on every page, also one
// opened while the job runs. Undo edit and Reset (confirmed) change the applied edits. Each step
// is reported in #status and #message and followed by fresh images and the list of applied edits.
// (The downloads are plain links in index.html: api/export/checkpoint and api/export/delta.)

import { api } from "./api.js";
import { $ } from "./dom.js";
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
    $("edit-title").textContent = `New ${TITLES[state.kind]}`;
    for (const r of document.querySelectorAll("input[name=kind]")) r.checked = r.value === state.kind;
    for (const r of document.querySelectorAll("input[name=mode]")) r.parentElement.hidden = !MODES[state.kind].includes(r.value);
    $("units-label").hidden = state.kind !== "erase";
    if (!MODES[state.kind].includes(state.mode)) {
      const mode = MODES[state.kind][0];
      document.querySelector(`input[name=mode][value=${mode}]`).checked = true;
      editor.setMode(mode);
    }
  }
  // Start a new edit of `kind`: every mark, the loaded spec and the stroke history are cleared.
  function newEdit(kind = state.kind, quiet = false) {
    state.kind = kind;
    state.copy = null; state.paste = null; state.context = new Map(); state.erase = new Map(); state.preserve = new Map();
    state.loaded = null; state.strength = 1; state.undo = []; state.redo = [];
    if (!quiet) { $("spec-name").value = ""; say(`New ${TITLES[kind]}: no marks yet.`); }
    showKind(); editor.draw(); refreshMarks(state);
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
    const what = `${job.kind || "edit"}${job.name ? ` '${job.name}'` : ""}`;
    return `${job.phase === "cancelling" ? "cancelling" : "applying"} ${what}: ${job.phase || "starting"} · ${Math.round(Date.now() / 1000 - job.started)} s`;
  }
  // Follow the running job until it ends; `spec`: the one this page applied (null for a job
  // started elsewhere).
  async function watch(spec = null) {
    if (watching) return;
    watching = true;
    $("apply").disabled = true;
    try {
      for (;;) {
        const job = await api("api/job");
        if (job.state === "running") {
          $("job").hidden = false;
          $("job-text").textContent = jobText(job);
          $("job-progress").value = job.total ? job.done / job.total : 0;
          $("job-progress").hidden = !job.total;
          status(jobText(job), "running");
          await new Promise((r) => setTimeout(r, 200));
          continue;
        }
        $("job").hidden = true;
        if (job.state === "failed") { status("edit failed", "failed"); say(job.message, "error"); break; }
        if (job.state === "cancelled") { status("cancelled", "done"); say("Edit cancelled: the model and the applied edits are as before."); break; }
        state.version = job.version;
        status(`applied (${job.edits} edit${job.edits === 1 ? "" : "s"})`, "done");
        const warnings = job.warnings || [];
        say([job.message + ". The gallery shows the edited model (\"Side by side\" compares it with the original); the marks stay, so you can adjust and apply again, or start a New edit.", ...warnings].join("\n"), warnings.length ? "warn" : "info");
        state.edited = true; $("show-edited").checked = true;
        if (state.heat) heat.hide();      // the overlay would hide what changed
        gallery.refresh();
        history.refresh();
        if (spec && spec.kind === "copy-paste" && goal.isOpen()) goal.preview(true, spec);
        break;
      }
    } catch (e) { status("", ""); fail(e); } finally { watching = false; $("apply").disabled = false; $("job").hidden = true; }
  }
  async function apply() {
    let spec;
    try { spec = buildSpec(state); } catch (e) { fail(e); return; }
    try {
      await api("api/apply", { method: "POST", body: JSON.stringify(spec) });
      say(`Computing the ${TITLES[spec.kind]} at ${spec.layer} (statistics are computed once per layer; the first edit on a layer takes longer).`);
      await watch(spec);
    } catch (e) { fail(e); }
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
      status(`${which === "undo" ? "undone" : "reset"} (${res.edits} edit${res.edits === 1 ? "" : "s"} left)`, "done");
      say(which === "undo" ? "Last applied edit undone (your marks are unchanged)." : "All edits undone: the original model.");
      gallery.refresh();
      history.refresh();
    } catch (e) { fail(e); }
  }
  return { apply, watch, cancel, undoOrReset, newEdit, setKind, showKind };
}
