// Edit specs: build one from the marks and controls (for Apply and Save), and save, list and
// load named specs in the workspace (api/specs), restoring a loaded spec's marks and settings.

import { api, sampleURL } from "./api.js";
import { $ } from "./dom.js";
import { bbox, contextEntries, maskEmpty, maskFromSpec } from "./masks.js";
import { fail, say } from "./messages.js";

const SAFE_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

// The spec the marks describe; throws an Error saying what is missing. "Not here" marks go
// into `preserve`; the edit name field, when it holds a valid name, names the spec.
export function buildSpec(state) {
  const erase = contextEntries(state, "erase");
  const preserve = contextEntries(state, "preserve");
  const rank = Number($("rank").value);
  const spec = { version: 1, model: state.info.model, layer: $("layer").value, rank,
    direction: rank > 1 ? "zca" : "mean", solver: { name: $("solver").value, params: {} } };
  const name = $("spec-name").value.trim();
  if (SAFE_NAME.test(name) && !name.includes("..")) spec.name = name;
  if (preserve.length) spec.preserve = preserve;
  if (state.strength !== 1) spec.strength = state.strength;
  const copyOK = state.copy && !maskEmpty(state.copy.mask);
  if (erase.length && !copyOK) {
    return { ...spec, kind: "erase", context: erase, erase: { units: Number($("units").value) } };
  }
  if (!copyOK) throw new Error("Nothing to apply: mark an object (Copy) and place it (Paste), or mark regions to Erase.");
  if (!state.paste) throw new Error("Place the copied object on another sample (Paste mode: click a sample, then drag on it).");
  const p = state.paste;
  return { ...spec, kind: "copy-paste", copy: { sample: state.copy.sample, mask: { png: state.copy.mask.toDataURL("image/png") } },
    paste: { sample: p.sample, mask: { rect: [Math.max(0, p.x), Math.max(0, p.y), Math.min(state.res, p.x + p.w), Math.min(state.res, p.y + p.h)] } },
    context: contextEntries(state, "context") };
}

export function createSpecs(state, gallery, editor) {
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
  async function load(name) {
    try {
      const spec = await api(`api/specs/${encodeURIComponent(name)}`);
      state.copy = null; state.paste = null; state.context = new Map(); state.erase = new Map(); state.preserve = new Map();
      $("spec-name").value = name;
      state.strength = typeof spec.strength === "number" ? spec.strength : 1;
      $("layer").value = spec.layer; $("rank").value = spec.rank || 1;
      if (spec.solver && spec.solver.name) $("solver").value = spec.solver.name;
      const target = spec.kind === "erase" ? state.erase : state.context;
      for (const c of spec.context || []) target.set(c.sample, await maskFromSpec(c.mask, state.res));
      for (const c of spec.preserve || []) state.preserve.set(c.sample, await maskFromSpec(c.mask, state.res));
      if (spec.copy) state.copy = { sample: spec.copy.sample, mask: await maskFromSpec(spec.copy.mask, state.res) };
      if (spec.copy) editor.showCopySource(sampleURL(spec.copy.sample, false, state.version));
      if (spec.paste && spec.paste.mask && spec.paste.mask.rect && state.copy) {
        const [x0, y0, x1, y1] = spec.paste.mask.rect, b = bbox(state.copy.mask);
        state.paste = { sample: spec.paste.sample, x: Math.round((x0 + x1 - b.w) / 2), y: Math.round((y0 + y1 - b.h) / 2), w: b.w, h: b.h };
      }
      say(`Loaded "${name}".` + (state.strength !== 1 ? ` It applies at strength ${state.strength} (the slider under "Applied edits" changes it afterwards).` : ""));
      gallery.render(); gallery.select(state.selected);
    } catch (e) { fail(e); }
  }
  return { refreshList, save, load };
}
