// The page's state: one plain object made by createState() and passed explicitly to the modules
// that read or change it (no module keeps state of its own at the top level).

export function createState() {
  return {
    info: null,                 // GET api/info: the model, its layers and solvers
    res: 64,                    // image (and mask) resolution in pixels
    page: 0, perPage: 24, tile: 96,
    selected: 0,                // the sample in the editor
    kind: "copy-paste",         // the edit being made: copy-paste | erase
    mode: "copy",               // copy | paste | context | erase | preserve ("not here")
    tool: "brush",              // brush | eraser | rect
    copy: null,                 // {sample, mask: canvas}
    paste: null,                // {sample, dx, dy, spec}: the object moved by (dx, dy) pixels from where it
                                // was copied; `spec`: the loaded spec's paste while it is not moved
    context: new Map(),         // sample -> mask canvas
    erase: new Map(),           // sample -> mask canvas
    preserve: new Map(),        // sample -> mask canvas: "not here", where the rule must not act
    edits: [],                  // GET api/edits: the applied edits, oldest first
    strength: 1,                // the strength of the loaded spec, applied with it
    loaded: null,               // the loaded spec: its fields the controls do not show are kept
    undo: [], redo: [],         // stroke history: snapshots of the marks (masks.js snapshotMarks)
    edited: true,               // show the edited model (else the original)
    side: false,                // original and edited side by side
    version: 0,                 // the server's edit version, for image URLs
    heat: null,                 // sample -> {sample, score, heat} while the heat map shows
    order: null,                // samples sorted by match, replacing the page
    drawing: null,              // the stroke, rectangle or paste drag in progress
    applied: null,              // {index}: the applied edit these marks made (Apply replaces it)
    busy: false,                // a job (Apply, solve together) runs: the controls it locks are off
  };
}
