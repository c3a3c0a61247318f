// The JSON API client (see /docs for its OpenAPI description): a fetch wrapper whose errors carry
// the server's explanation (spec problems or detail) for the page to show, and the sample image URLs.

// FastAPI's validation errors ([{loc, msg, input}]) as sentences; anything else as JSON.
function validationText(detail) {
  if (!Array.isArray(detail)) return JSON.stringify(detail);
  return detail.map((d) => `${(d.loc || []).slice(-1)[0] || "request"}: ${d.msg}` + ("input" in d ? ` (got ${JSON.stringify(d.input)})` : "")).join("\n");
}

export async function api(path, options = {}) {
  const res = await fetch(path, { headers: { "Content-Type": "application/json" }, ...options });
  if (!res.ok) {
    let detail = `${res.status} ${res.statusText}`;
    try {
      const body = await res.json();
      detail = body.problems ? body.problems.join("\n") : (typeof body.detail === "string"
        ? body.detail : validationText(body.detail));
    } catch (_) { /* not JSON */ }
    const err = new Error(detail);
    err.status = res.status;
    throw err;
  }
  return res.status === 204 ? null : res.json();
}

// A sample's image from the original or the edited model; `version` busts the cache after each edit.
export function sampleURL(i, edited, version) { return `api/sample/${i}.png?edited=${edited ? 1 : 0}&v=${version}`; }
