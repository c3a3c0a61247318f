// Edit specs: build one from the marks and controls (for Apply and Save), save, list and load
// named specs in the workspace (api/specs), open one from a local file and download one. A
// loaded spec round-trips: the fields the page has no control for (description, direction,
// solver params, erase goal, preserve_weight, stats, ...) are kept, and each mask is saved as the
// spec had it (rect, polygon, png, paste offset) until it is changed on the page.

import { api, sampleURL } from "./api.js";
import { $ } from "./dom.js";
import { bbox, contextEntries, maskEmpty, maskFromSpec, maskJSON } from "./masks.js";
import { fail, say } from "./messages.js";
import { refreshMarks } from "./selections.js";

const SAFE_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const MARKS = ["copy", "paste", "context", "preserve"];

// The spec the marks of the current edit describe (its kind is state.kind, nothing else); throws
// an Error saying what is missing. "Not here" marks go into `preserve`; the edit name field, when
// it holds a valid name, names the spec.
export function buildSpec(state) {
  const base = state.loaded ? JSON.parse(JSON.stringify(state.loaded)) : {};
  for (const k of MARKS) delete base[k];
  const rank = Number($("rank").value);
  const solver = $("solver").value;
  const spec = { ...base, version: base.version || 1, model: state.info.model, layer: $("layer").value, kind: state.kind };
  // A loaded spec that left rank, direction or solver to the library's defaults keeps leaving
  // them out while the page still shows those defaults; a new edit writes them all.
  const d = state.info.spec_defaults, fresh = !state.loaded;
  const direction = base.direction || (rank > 1 ? "zca" : "mean");
  if (fresh || "rank" in base || rank !== d.rank) spec.rank = rank; else delete spec.rank;
  if (fresh || "direction" in base || direction !== d.direction) spec.direction = direction; else delete spec.direction;
  if (fresh || "solver" in base || solver !== d.solver) {
    spec.solver = { name: solver, params: base.solver && base.solver.name === solver ? base.solver.params || {} : {} };
  } else delete spec.solver;
  const name = $("spec-name").value.trim();
  if (SAFE_NAME.test(name) && !name.includes("..")) spec.name = name; else delete spec.name;
  const preserve = contextEntries(state, "preserve");
  if (preserve.length) spec.preserve = preserve;
  if (state.strength !== 1 || "strength" in base) spec.strength = state.strength;
  if (state.kind === "erase") {
    const erase = contextEntries(state, "erase");
    if (!erase.length) throw new Error("Nothing to erase: mark what to remove (Erase mode) on a few samples.");
    return { ...spec, context: erase, erase: { ...(base.erase || {}), units: Number($("units").value) } };
  }
  const copyOK = state.copy && (state.copy.mask.specMask || !maskEmpty(state.copy.mask));
  if (!copyOK) throw new Error("Nothing to apply: this is a copy-paste edit, and it has no copy mask. Mark an object (Copy) and place it (Paste) — or choose Erase above.");
  if (!state.paste) throw new Error("Place the copied object on another sample (Paste mode: click a sample, then drag on it).");
  const p = state.paste;
  spec.copy = { sample: state.copy.sample, mask: maskJSON(state.copy.mask) };
  spec.paste = p.spec ? JSON.parse(JSON.stringify(p.spec)) : { sample: p.sample, offset: [p.dx, p.dy] };
  spec.context = contextEntries(state, "context");
  if (!spec.context.length && state.loaded && !("context" in state.loaded)) delete spec.context;
  delete spec.erase;
  return spec;
}

// Where a loaded paste puts the object, as a move (dx, dy) of the copy mask's box (for the preview).
async function pasteMove(spec, copyMask, res) {
  const b = bbox(copyMask);
  if (!b) return { dx: 0, dy: 0 };
  if (spec.paste.offset) return { dx: spec.paste.offset[0], dy: spec.paste.offset[1] };
  const p = bbox(await maskFromSpec(spec.paste.mask, res));
  if (!p) return { dx: 0, dy: 0 };
  return { dx: Math.round(p.x + p.w / 2 - (b.x + b.w / 2)), dy: Math.round(p.y + p.h / 2 - (b.y + b.h / 2)) };
}

// `edits` (main.js) owns the edit kind and "New edit".
export function createSpecs(state, gallery, editor, edits) {
  async function refreshList() {
    const names = await api("api/specs");
    $("spec-list").innerHTML = `<option value="">load…</option>` + names.map((n) => `<option>${n}</option>`).join("");
  }
  async function save() {
    const name = $("spec-name").value.trim();
    if (!SAFE_NAME.test(name) || name.includes("..")) {
      say(`invalid name "${name}": use letters, digits, '-', '_' and '.' (at most 64 characters)`, "error");
      return;
    }
    try {
      await api(`api/specs/${encodeURIComponent(name)}`, { method: "PUT", body: JSON.stringify(buildSpec(state)) });
      say(`Saved "${name}".`); refreshList();
    } catch (e) { fail(e); }
  }
  // The spec as a JSON file on this computer.
  function download() {
    let spec;
    try { spec = buildSpec(state); } catch (e) { fail(e); return; }
    const a = document.createElement("a");
    a.href = URL.createObjectURL(new Blob([JSON.stringify(spec, null, 2) + "\n"], { type: "application/json" }));
    a.download = `${spec.name || "edit"}.json`;
    document.body.appendChild(a); a.click(); a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 10000);
    say(`Downloaded ${a.download}.`);
  }
  // Make the page's edit the one `spec` describes (all its marks and settings).
  async function show(spec, label) {
    if (!spec || typeof spec !== "object" || !["copy-paste", "erase"].includes(spec.kind)) throw new Error(`${label} is not an edit spec (its kind must be "copy-paste" or "erase")`);
    const had = edits.newEdit(spec.kind, true);
    state.loaded = JSON.parse(JSON.stringify(spec));
    $("spec-name").value = spec.name || "";
    state.strength = typeof spec.strength === "number" ? spec.strength : 1;
    if (spec.layer) $("layer").value = spec.layer;
    $("rank").value = spec.rank || state.info.spec_defaults.rank;
    $("solver").value = (spec.solver && spec.solver.name) || state.info.spec_defaults.solver;
    if (spec.erase && spec.erase.units) $("units").value = spec.erase.units;
    const target = spec.kind === "erase" ? state.erase : state.context;
    for (const c of spec.context || []) target.set(c.sample, await maskFromSpec(c.mask, state.res));
    for (const c of spec.preserve || []) state.preserve.set(c.sample, await maskFromSpec(c.mask, state.res));
    if (spec.copy) {
      state.copy = { sample: spec.copy.sample, mask: await maskFromSpec(spec.copy.mask, state.res) };
      editor.showCopySource(sampleURL(spec.copy.sample, false, state.version));
      if (spec.paste) state.paste = { sample: spec.paste.sample, ...(await pasteMove(spec, state.copy.mask, state.res)), spec: JSON.parse(JSON.stringify(spec.paste)) };
    }
    say(`Loaded ${label}: a ${spec.kind} edit.` + (state.strength !== 1 ? ` It applies at strength ${state.strength} (the slider under "Applied edits" changes it afterwards).` : "")
      + (had ? " The marks you had are replaced (Ctrl+Z or ↶ Stroke brings them back)." : ""));
    gallery.render(); gallery.select(state.selected); refreshMarks(state);
  }
  async function load(name) {
    try { await show(await api(`api/specs/${encodeURIComponent(name)}`), `"${name}"`); } catch (e) { fail(e); }
  }
  async function openFile(file) {
    try {
      let spec;
      try { spec = JSON.parse(await file.text()); } catch (e) { throw new Error(`${file.name} is not JSON: ${e.message}`); }
      await show(spec, `"${file.name}"`);
    } catch (e) { fail(e); }
  }
  return { refreshList, save, load, show, openFile, download };
}
