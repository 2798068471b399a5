// The public API, as the console calls it: the same origin (the local gateway serves both; on AWS
// CloudFront sends /v1/* to API Gateway), the key from this tab's sessionStorage only.

const KEY = "loyalty-console.key";
const KIND = "loyalty-console.kind";

export const session = {
  key: () => sessionStorage.getItem(KEY),
  kind: () => sessionStorage.getItem(KIND),
  save(key, kind) {
    sessionStorage.setItem(KEY, key);
    sessionStorage.setItem(KIND, kind);
  },
  clear() {
    sessionStorage.removeItem(KEY);
    sessionStorage.removeItem(KIND);
  },
};

// An RFC 9457 problem document from the API, with its field errors by place ("effect.value").
export class Problem extends Error {
  constructor(status, doc) {
    super(doc.detail || doc.title || `HTTP ${status}`);
    this.status = status;
    this.doc = doc;
  }
  get slug() {
    return String(this.doc.type || "").split("/").pop();
  }
  fields() {
    const out = {};
    for (const e of this.doc.errors || []) {
      const loc = (e.loc || []).filter((p, i) => !(i === 0 && ["body", "query", "path"].includes(p)));
      const at = loc.join(".") || "_";
      out[at] = out[at] ? `${out[at]}; ${e.msg}` : e.msg;
    }
    return out;
  }
}

function url(path, query) {
  const u = new URL(path, window.location.origin);
  for (const [k, v] of Object.entries(query || {})) {
    if (v !== undefined && v !== null && v !== "") u.searchParams.set(k, v);
  }
  return u;
}

export async function call(method, path, { body, query, key, text } = {}) {
  const headers = { "x-api-key": key || session.key() || "" };
  if (body !== undefined) headers["content-type"] = "application/json";
  const response = await fetch(url(path, query), {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "omit",
    cache: "no-store",
  });
  if (response.status === 204) return null;
  if (!response.ok) {
    let doc;
    try {
      doc = await response.json();
    } catch {
      doc = { title: response.statusText || "Request failed", status: response.status };
    }
    if (response.status === 401 && !key) window.dispatchEvent(new CustomEvent("console:signed-out"));
    throw new Problem(response.status, doc);
  }
  return text ? response.text() : response.json();
}

export const get = (path, query) => call("GET", path, { query });
export const put = (path, body) => call("PUT", path, { body });
export const post = (path, body) => call("POST", path, { body: body ?? {} });
export const del = (path) => call("DELETE", path);

// Which kind a key is, from what it may call: key management answers only admins; offers answer
// marketers and admins; a till's or web shop's key is not for the console.
export async function kindOf(key) {
  try {
    await call("GET", "/v1/admin/api-keys", { key, query: { limit: 1 } });
    return "admin";
  } catch (e) {
    if (!(e instanceof Problem) || e.status !== 403) throw e;
  }
  try {
    await call("GET", "/v1/admin/offers", { key, query: { limit: 1 } });
    return "marketer";
  } catch (e) {
    if (e instanceof Problem && e.status === 403) {
      throw new Problem(403, { title: "Not a console key", detail: "sign in with an admin or marketer key" });
    }
    throw e;
  }
}

export function download(name, text, type = "text/csv") {
  const link = document.createElement("a");
  link.href = URL.createObjectURL(new Blob([text], { type }));
  link.download = name;
  document.body.append(link);
  link.click();
  setTimeout(() => {
    URL.revokeObjectURL(link.href);
    link.remove();
  }, 0);
}
