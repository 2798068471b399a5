// Shared pieces: the html tag, form fields with their errors beside them, problem banners, tables.
import { h } from "preact";
import htm from "htm";
import { useEffect, useRef, useState } from "preact/hooks";
import { Problem, call, download } from "./api.js";

export const html = htm.bind(h);

let ids = 0;
export const useId = (prefix) => useRef(`${prefix}-${++ids}`).current;

// The error a problem document names for `name` (or anything below it: "effect" gets
// "effect.value: ..."), so it is shown next to the field it is about.
export function errorFor(errors, name) {
  if (!errors) return null;
  const found = Object.entries(errors).filter(([at]) => at === name || at.startsWith(`${name}.`));
  if (!found.length) return null;
  return found.map(([at, msg]) => (at === name ? msg : `${at.slice(name.length + 1)}: ${msg}`)).join("; ");
}

export function Field({ label, name, errors, hint, children, ...input }) {
  const id = useId(`f-${name}`);
  const error = errorFor(errors, name);
  const describedBy = [hint ? `${id}-hint` : null, error ? `${id}-error` : null].filter(Boolean).join(" ");
  const common = {
    id,
    name,
    "aria-invalid": error ? "true" : undefined,
    "aria-describedby": describedBy || undefined,
    ...input,
  };
  let control;
  if (input.type === "select") {
    const { options, ...rest } = common;
    control = html`<select ...${{ ...rest, type: undefined }}>
      ${options.map((o) => html`<option value=${o.value ?? o}>${o.label ?? o}</option>`)}
    </select>`;
  } else if (input.type === "textarea") {
    control = html`<textarea ...${{ rows: 4, ...common, type: undefined }}></textarea>`;
  } else if (input.type === "checkbox") {
    return html`<div class="field check">
      <input ...${common} />
      <label for=${id}>${label}</label>
      ${error ? html`<p class="field-error" id=${`${id}-error`}>${error}</p>` : null}
    </div>`;
  } else {
    control = html`<input ...${common} />`;
  }
  return html`<div class=${`field${error ? " invalid" : ""}`}>
    <label for=${id}>${label}</label>
    ${control}
    ${hint ? html`<p class="hint" id=${`${id}-hint`}>${hint}</p>` : null}
    ${error ? html`<p class="field-error" id=${`${id}-error`}>${error}</p>` : null}
    ${children}
  </div>`;
}

// A problem document: its title and detail, and the field errors no field on the form took.
export function ProblemBanner({ error, shown = [] }) {
  if (!error) return null;
  if (!(error instanceof Problem)) {
    return html`<div class="problem" role="alert"><strong>Something went wrong.</strong> ${String(error.message || error)}</div>`;
  }
  const rest = Object.entries(error.fields()).filter(([at]) => !shown.some((n) => at === n || at.startsWith(`${n}.`)));
  return html`<div class="problem" role="alert">
    <strong>${error.doc.title || "Request refused"}</strong> (${error.status}${error.slug ? `, ${error.slug}` : ""})
    ${error.doc.detail ? html`<p>${error.doc.detail}</p>` : null}
    ${rest.length
      ? html`<ul>${rest.map(([at, msg]) => html`<li><code>${at}</code>: ${msg}</li>`)}</ul>`
      : null}
  </div>`;
}

export function Loading({ what = "Loading" }) {
  return html`<p class="loading" role="status" aria-live="polite">${what}…</p>`;
}

export function Table({ caption, columns, rows, rowKey = (row, i) => i, empty = "Nothing yet." }) {
  if (!rows.length) return html`<p class="empty">${empty}</p>`;
  return html`<div class="table-wrap" tabindex="0" role="region" aria-label=${caption}>
    <table>
      <caption>${caption}</caption>
      <thead><tr>${columns.map((c) => html`<th scope="col" class=${c.num ? "num" : ""}>${c.label}</th>`)}</tr></thead>
      <tbody>
        ${rows.map(
          (row, i) => html`<tr key=${rowKey(row, i)}>
            ${columns.map((c) => html`<td class=${c.num ? "num" : ""}>${c.render ? c.render(row) : fmt(row[c.key])}</td>`)}
          </tr>`,
        )}
      </tbody>
    </table>
  </div>`;
}

export function fmt(value) {
  if (value === null || value === undefined || value === "") return "—";
  if (typeof value === "boolean") return value ? "yes" : "no";
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

export function when(value) {
  if (!value) return "—";
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? value : d.toLocaleString("en-GB", { timeZone: "UTC" }) + " UTC";
}

// Load once per change of `deps`; {data, error, loading, reload}.
export function useLoad(load, deps) {
  const [state, setState] = useState({ loading: true });
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    setState((s) => ({ ...s, loading: true, error: null }));
    load().then(
      (data) => live && setState({ data, loading: false }),
      (error) => live && setState({ error, loading: false }),
    );
    return () => {
      live = false;
    };
  }, [...deps, tick]);
  return { ...state, reload: () => setTick((t) => t + 1) };
}

export function Page({ title, children, actions }) {
  useEffect(() => {
    document.title = `${title} · Loyalty console`;
  }, [title]);
  return html`<section class="page" aria-labelledby="page-title">
    <header class="page-head">
      <h1 id="page-title" tabindex="-1">${title}</h1>
      ${actions ? html`<div class="actions">${actions}</div>` : null}
    </header>
    ${children}
  </section>`;
}

// A report's rows as CSV (the API's format=csv), saved as a download.
export function Csv({ path, query, name }) {
  const [error, setError] = useState(null);
  async function save() {
    setError(null);
    try {
      download(name, await call("GET", path, { query: { ...query, format: "csv" }, text: true }));
    } catch (e) {
      setError(e);
    }
  }
  return html`<button type="button" class="secondary" onClick=${save}>Download CSV</button><${ProblemBanner} error=${error} />`;
}
