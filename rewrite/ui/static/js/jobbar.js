// The job bar (#job, in the sticky top bar): what a long job (an Apply, a joint solve) is doing,
// its progress (indeterminate when unknown) and Cancel; and, while it runs, the controls that
// would change the model or the edit's settings under it are disabled (state.busy).

import { $ } from "./dom.js";

const LOCKED = ["apply", "undo", "reset", "layer", "rank", "solver", "units", "sampling-set"];

// `progress`: a fraction in [0, 1], or null for an indeterminate bar.
export function showJob(text, progress) {
  $("job").hidden = false;
  $("job-text").textContent = text;
  const bar = $("job-progress");
  if (progress === null) bar.removeAttribute("value"); else bar.value = progress;
}

export function hideJob() { $("job").hidden = true; }

export function setBusy(state, busy) {
  state.busy = busy;
  for (const id of LOCKED) $(id).disabled = busy;
  for (const el of document.querySelectorAll("#history-panel button, #history-panel input")) el.disabled = busy;
  $("undo").disabled = busy || !state.edits.length;       // nothing to undo
}
