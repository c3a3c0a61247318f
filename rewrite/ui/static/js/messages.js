// What the page tells the user: the #message line (say, fail) and the #status badge in the header.

import { $ } from "./dom.js";

export function say(text, kind = "info") { const m = $("message"); m.textContent = text; m.className = kind; }
export function fail(err) { say(err.message || String(err), "error"); }
export function status(text, kind = "") { const s = $("status"); s.textContent = text; s.className = kind; }
