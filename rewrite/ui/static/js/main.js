// The page's entry point, the only script index.html loads: creates the state and the modules,
// then, once api/info has described the model, fills the layer and solver lists and wires the
// controls. Leaving or reloading the page with marks asks first (they live only in this page).

import { api } from "./api.js";
import { createEditor } from "./canvas.js";
import { $ } from "./dom.js";
import { createEdits } from "./edits.js";
import { createGallery } from "./gallery.js";
import { createGoal } from "./goal.js";
import { createHeatmap } from "./heatmap.js";
import { createHistory } from "./history.js";
import { hasMarks } from "./masks.js";
import { fail, say, status } from "./messages.js";
import { createSpecs } from "./specs.js";
import { createState } from "./state.js";

const state = createState();
// After each stroke, an open heat map is recomputed (and re-sorted) with the new marks; a stroke
// undone or redone on another sample shows that sample, and the kind of the restored edit.
const editor = createEditor(state, {
  onStrokeEnd: () => { heat.update(); guide(); },
  onRestore: (at) => { edits.showKind(); if (at !== undefined && at !== state.selected) gallery.show(at); },
});
const gallery = createGallery(state, editor);
const heat = createHeatmap(state, gallery);
const history = createHistory(state, gallery);
const goal = createGoal(state);
const edits = createEdits(state, gallery, { history, goal, editor, heat });
const specs = createSpecs(state, gallery, editor, edits);
history.setOnChange(() => edits.showKind());

// While the message is the first screen's guide, it names the next step of a copy-paste edit.
const START = "Start here: ", NEXT = "Next: ";
function guide() {
  const m = $("message").textContent;
  if (state.kind !== "copy-paste" || !(m.startsWith(START) || m.startsWith(NEXT))) return;
  if (!state.copy) return;
  if (!state.paste) say(NEXT + "choose Paste, click another sample in the gallery and drag the object to where it should go.");
  else if (!state.context.size) say(NEXT + "choose Context and paint where the rule should apply, on a few samples (the pasted one too); then Apply.");
  else say(NEXT + "Apply (or mark more context, or \"Not here\" where the rule must not act).");
}

function layerLabel(L) { return `${L.name} (${L.key_resolution}×${L.key_resolution} keys → ${L.value_resolution}×${L.value_resolution}, ${L.in_channels} ch)`; }

function wireControls() {
  for (const r of document.querySelectorAll("input[name=mode]")) r.addEventListener("change", () => editor.setMode(r.value));
  for (const r of document.querySelectorAll("input[name=tool]")) r.addEventListener("change", () => editor.setTool(r.value));
  $("clear-mask").addEventListener("click", () => editor.clearMask());
  for (const r of document.querySelectorAll("input[name=kind]")) r.addEventListener("change", () => edits.setKind(r.value));
  $("new-edit").addEventListener("click", () => edits.newEdit());
  $("cancel").addEventListener("click", edits.cancel);
  $("stroke-undo").addEventListener("click", () => editor.undoStroke(false));
  $("stroke-redo").addEventListener("click", () => editor.undoStroke(true));
  window.addEventListener("keydown", (ev) => {
    if (!(ev.ctrlKey || ev.metaKey)) return;
    const t = ev.target;
    if (t && (t.tagName === "TEXTAREA" || (t.tagName === "INPUT" && !["radio", "checkbox", "range", "button"].includes(t.type)))) return;
    const key = ev.key.toLowerCase();
    if (key === "z" || key === "y") { ev.preventDefault(); editor.undoStroke(key === "y" || ev.shiftKey); }
  });
  $("spec-file").addEventListener("change", (e) => { const f = e.target.files[0]; if (f) specs.openFile(f); e.target.value = ""; });
  $("spec-download").addEventListener("click", specs.download);
  $("apply").addEventListener("click", edits.apply);
  $("undo").addEventListener("click", () => edits.undoOrReset("undo"));
  $("reset").addEventListener("click", () => edits.undoOrReset("reset"));
  $("show-edited").addEventListener("change", (e) => { state.edited = e.target.checked; gallery.refresh(); status(state.edited ? "showing the edited model" : "showing the original model"); });
  $("side-by-side").addEventListener("change", (e) => { state.side = e.target.checked; gallery.render(); });
  $("heatmap").addEventListener("click", () => heat.show(false));
  $("sort-match").addEventListener("click", () => heat.show(true));
  $("heat-off").addEventListener("click", () => heat.hide());
  $("goal-preview").addEventListener("click", () => goal.preview(false));
  $("goal-close").addEventListener("click", () => goal.hide());
  $("prev").addEventListener("click", () => { state.order = null; state.page = Math.max(0, state.page - 1); gallery.render(); });
  $("next").addEventListener("click", () => { state.order = null; state.page += 1; gallery.render(); });
  // Enter goes to the sample even when the field already shows it (e.g. to leave "best matches").
  let entered = false;
  $("goto").addEventListener("keydown", (e) => {
    if (e.key !== "Enter") return;
    entered = true; setTimeout(() => { entered = false; }, 0);
    goTo(e.target.value);
  });
  $("goto").addEventListener("change", (e) => { if (!entered) goTo(e.target.value); });
  $("tile-size").addEventListener("input", (e) => { state.tile = Number(e.target.value); gallery.render(); });
  $("save-spec").addEventListener("click", specs.save);
  $("sampling-set").addEventListener("click", setSampling);
  $("spec-list").addEventListener("change", (e) => { if (e.target.value) specs.load(e.target.value); });
  // An export needs an applied edit: without one, say so instead of a file that is not edited.
  for (const [id, what] of [["dl-checkpoint", "the edited model would be the original one"], ["dl-delta", "there is no delta to export"]]) {
    $(id).addEventListener("click", (ev) => {
      const gated = state.edits.filter((e) => e.gated).length;
      if (id === "dl-checkpoint" && gated) {
        ev.preventDefault();
        say(`${gated} of the applied edits ${gated === 1 ? "is a gated edit" : "are gated edits"}: not a weight change, so the model's checkpoint format cannot hold ${gated === 1 ? "it" : "them"}. Export the delta file instead (it keeps the gate and re-applies to the original model).`, "error");
        return;
      }
      if (state.edits.length) { say(`Downloading ${id === "dl-delta" ? "the delta of" : "the model with"} the ${state.edits.length} applied edit(s)…`); return; }
      ev.preventDefault();
      say(`No edit is applied yet, so ${what}: Apply an edit first.`, "error");
      history.refresh();
    });
  }
  $("message").addEventListener("click", () => $("message").classList.toggle("open"));
  window.addEventListener("beforeunload", (ev) => { if (hasMarks(state)) { ev.preventDefault(); ev.returnValue = ""; } });
}

// Show sample `raw` (the Go to field); a value the API does not take gets its own explanation.
async function goTo(raw) {
  const text = String(raw).trim(), n = Number(text);
  if (text === "") return;
  if (!Number.isInteger(n) || n < 0 || n > state.info.max_sample) {
    let why = `sample index must be a whole number from 0 to ${state.info.max_sample}`;
    try {
      const res = await fetch(`api/sample/${encodeURIComponent(text)}.png?edited=0`);
      if (!res.ok) await api(`api/sample/${encodeURIComponent(text)}.png?edited=0`);
    } catch (e) { why = e.message; }
    say(`Cannot go to sample ${text}: ${why}`, "error");
    $("goto").value = state.selected;
    return;
  }
  state.order = null; state.page = Math.floor(n / state.perPage);
  gallery.render(); gallery.select(n);
}

// The header names the sampling settings that differ from the defaults; the Samples controls
// (truncation for StyleGAN families, class for class-conditional models) show the current ones.
function showSampling(sampling) {
  const shown = Object.entries(sampling).map(([k, v]) => `${k} ${v}`);
  $("model-info").textContent = [`${state.info.model}`, state.info.family, `${state.res}×${state.res}`,
    ...shown].join(" · ");
  const opts = state.info.sampling_options || {};
  $("sampling").hidden = !(opts.truncation || opts.classes);
  $("truncation-label").hidden = !opts.truncation;
  $("class-label").hidden = !opts.classes;
  if (opts.classes) $("class").max = opts.classes - 1;
  $("truncation").value = sampling.truncation ?? 1;
  $("class").value = sampling.class ?? 0;
}

async function setSampling() {
  const opts = state.info.sampling_options || {};
  const body = {};
  if (opts.truncation) body.truncation = Number($("truncation").value);
  if (opts.classes) body.class = Number($("class").value);
  try {
    status("rendering with the new settings…", "running");
    const res = await api("api/sampling", { method: "POST", body: JSON.stringify(body) });
    state.version = res.version;
    showSampling(res.sampling);
    status("ready", "done");
    say("Samples now render with these settings; the applied edits stay, and new edits are made on these samples.");
    gallery.refresh();
  } catch (e) { status("", ""); fail(e); }
}

async function start() {
  try {
    state.info = await api("api/info");
  } catch (e) { fail(e); return; }
  state.res = state.info.resolution; state.version = state.info.version;
  showSampling(state.info.sampling || {});
  $("layer").innerHTML = state.info.layers.map((L) => `<option value="${L.name}">${layerLabel(L)}</option>`).join("");
  const mid = state.info.layers[Math.floor(state.info.layers.length / 2)];
  $("layer").value = mid.name;
  $("solver").innerHTML = state.info.solvers.map((s) => `<option>${s}</option>`).join("");
  wireControls();
  // The layer of the edit running, or of the last one while edits are applied.
  const job = state.info.job;
  if (job.layer && job.kind !== "solve-together" && (job.state === "running" || state.info.edits.length)) $("layer").value = job.layer;
  editor.setMode(state.mode);
  edits.showKind();
  say(START + "paint the object to copy on a sample (click one in the gallery, then paint on it). "
    + "Then choose Paste and drag it onto another sample, mark Context where the rule should apply, and Apply.");
  gallery.render(); gallery.select(0); specs.refreshList(); history.refresh();
  status(state.info.edits.length ? `${state.info.edits.length} edit(s) applied` : "ready");
  if (state.info.job.state === "running") edits.watch();      // an edit started elsewhere
  else warming(state.info.stats_running);
}

// While statistics are computed (the server warms up the default layer), say so, with progress.
async function warming(running) {
  let first = true;
  while (running && running.length && (first || $("status").className === "warming")) {
    first = false;
    const s = running[0];
    status(`ready — statistics of ${s.layer} still computing (${s.done}/${s.total} samples); the first edit there waits for them`, "warming");
    await new Promise((r) => setTimeout(r, 500));
    try { running = (await api("api/job")).stats_running; } catch (_) { return; }
    if (!running.length && $("status").className === "warming") status(`ready — statistics of ${s.layer} computed`, "done");
  }
}
start();
