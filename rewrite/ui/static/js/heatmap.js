// The rule preview: asks the API where the context direction fires (api/heatmap), keeps the
// result in state.heat (and state.order when sorting by match) and draws the red overlays. The
// page recomputes it (and sorts again) after the marks change; Hide takes it and its message away.

import { api } from "./api.js";
import { $ } from "./dom.js";
import { contextEntries } from "./masks.js";
import { fail, say, status } from "./messages.js";

const SORTED = "Samples sorted ", RED = "Red: ";

// A heat map (rows of values in [0, 1]) as a red overlay canvas of `size` CSS pixels.
export function heatCanvas(heat, size) {
  const n = heat.length, c = document.createElement("canvas");
  c.className = "heat"; c.width = n; c.height = n;
  c.style.width = c.style.height = `${size}px`;
  const g = c.getContext("2d"), d = g.createImageData(n, n);
  heat.forEach((row, y) => row.forEach((v, x) => {
    const o = (y * n + x) * 4; d.data[o] = 255; d.data[o + 1] = 40; d.data[o + 2] = 40; d.data[o + 3] = Math.round(v * 170);
  }));
  g.putImageData(d, 0, 0);
  return c;
}

export function createHeatmap(state, gallery) {
  // The heat map on the page (or, `sortWide`, on 96 samples from the page on, sorted by score).
  // `quiet`: recomputed after a stroke, without a message of its own.
  async function show(sortWide, quiet = false) {
    const mode = state.kind === "erase" ? "erase" : "context";
    const context = contextEntries(state, mode);
    if (!context.length) { say(mode === "erase" ? "Mark what to remove (Erase mode) on a few samples first." : "Mark context regions (Context mode) on a few samples first.", "error"); return; }
    const samples = sortWide
      ? Array.from({ length: 96 }, (_, i) => state.page * state.perPage + i)
      : gallery.samples();
    try {
      status("finding where the rule fires…", "running");
      const res = await api("api/heatmap", { method: "POST", body: JSON.stringify({ layer: $("layer").value, rank: Number($("rank").value), direction: Number($("rank").value) > 1 ? "zca" : "mean", context, samples }) });
      state.heat = new Map(res.samples.map((s) => [s.sample, s]));
      if (sortWide) state.order = [...res.samples].sort((a, b) => b.score - a.score).map((s) => s.sample);
      status("heat map ready", "done");
      if (!quiet) say(sortWide ? SORTED + "by how strongly the rule fires (score = strongest response)." : RED + "where the context direction fires on each sample.");
      gallery.render();
    } catch (e) { status("", ""); fail(e); }
  }
  // `quiet`: leave the message (another step is reporting).
  function hide(quiet = false) {
    state.heat = null; state.order = null; gallery.render();
    const m = $("message").textContent;
    if (!quiet && (m.startsWith(SORTED) || m.startsWith(RED))) say("Heat map hidden.");
  }
  // After the marks changed: the open heat map (and the order it sorts by) is computed again,
  // or taken away when no region is left to define the rule.
  function update() {
    if (!state.heat) return;
    const mode = state.kind === "erase" ? "erase" : "context";
    if (!contextEntries(state, mode).length) { hide(true); return; }
    show(state.order !== null, true);
  }
  return { show, hide, update };
}
