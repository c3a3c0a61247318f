// What the page tells the user: the #message line (say, fail) and the #status badge in the header,
// both in the sticky bar at the top (a long message shows two lines until clicked). The badge's colour never contradicts the message: a
// refusal or failure shown under a green ("done") badge turns the badge grey.

import { $ } from "./dom.js";

export function say(text, kind = "info") {
  const m = $("message"); m.textContent = text; m.className = kind; m.scrollTop = 0;
  // Two lines show; a longer message opens in full on a click (title says so).
  m.title = m.scrollHeight > m.clientHeight + 2 ? "Click to show the whole message" : "";
  const s = $("status");
  if (kind === "error" && s.className === "done") s.className = "stale";
}
export function fail(err) { say(err.message || String(err), "error"); }
export function status(text, kind = "") { const s = $("status"); s.textContent = text; s.className = kind; }
