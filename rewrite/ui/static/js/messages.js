// What the page tells the user: the #message line (say, fail) and the #status badge in the header,
// both in the sticky bar at the top. The badge's colour never contradicts the message: a
// refusal or failure shown under a green ("done") badge turns the badge grey.

import { $ } from "./dom.js";

export function say(text, kind = "info") {
  const m = $("message"); m.textContent = text; m.className = kind; m.scrollTop = 0;
  const s = $("status");
  if (kind === "error" && s.className === "done") s.className = "stale";
}
export function fail(err) { say(err.message || String(err), "error"); }
export function status(text, kind = "") { const s = $("status"); s.textContent = text; s.className = kind; }
