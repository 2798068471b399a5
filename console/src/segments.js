// Segments: a rule builder over the contract's facets, a live (debounced) preview count, size, members.
import { useEffect, useRef, useState } from "preact/hooks";
import { Problem, del, get, post, put } from "./api.js";
import { Field, Loading, Page, ProblemBanner, Table, errorFor, html, useLoad, when } from "./ui.js";

// The contract's paths and operators ("Segments and customer scores"); a profile's own attributes
// (profile.attributes.<name>) are typed, so the path is a text field offering these.
export const PATHS = [
  "member", "status", "tier", "points.available", "points.pending", "points.lifetime", "stats.transactions",
  "stats.spend", "stats.first_purchase_at", "stats.last_purchase_at", "created_at", "enrolled_at",
  "profile.birthday", "profile.country", "consents.email", "consents.sms", "consents.mail", "price_groups",
  "badges", "scores.r", "scores.f", "scores.m", "scores.rfm",
];
const OPS = ["eq", "ne", "in", "not_in", "gt", "gte", "lt", "lte", "exists", "contains", "before", "within"];
const KINDS = [
  { value: "attr", label: "Attribute" },
  { value: "purchased", label: "Purchased" },
  { value: "event", label: "Event" },
  { value: "birthday", label: "Birthday coming" },
];
const list = (text) => text.split(",").map((s) => s.trim()).filter(Boolean);

// A value as typed: numbers and true/false as such, lists for in / not_in, text otherwise.
function typed(op, text) {
  if (op === "in" || op === "not_in") return list(text).map((v) => typed("eq", v));
  if (op === "exists") return text !== "false";
  if (text === "true" || text === "false") return text === "true";
  if (text !== "" && !Number.isNaN(Number(text)) && !["before", "within"].includes(op)) return Number(text);
  return text;
}

export function conditionOf(row) {
  if (row.kind === "attr") return { attr: row.path, [row.op]: typed(row.op, row.value) };
  if (row.kind === "birthday") return { birthday: { within_days: Number(row.days || 0) } };
  const body = { within: row.within || "P90D" };
  if (row.kind === "event") body.type = row.type;
  if (row.kind === "purchased" && row.categories) body.categories = list(row.categories);
  if (row.kind === "purchased" && row.channels) body.channels = list(row.channels);
  if (row.count) body.count = { gte: Number(row.count) };
  if (row.kind === "purchased" && row.spend) body.spend = { gte: row.spend };
  return { [row.kind]: body };
}

// Back from a stored rule to rows, where the builder can show it (one level of all/any).
function rowsOf(rule) {
  const mode = rule && rule.any ? "any" : "all";
  const items = rule ? rule[mode] : [];
  if (!Array.isArray(items)) return null;
  const rows = [];
  for (const c of items) {
    if (c.attr) {
      const op = OPS.find((o) => o in c);
      if (!op) return null;
      rows.push({ kind: "attr", path: c.attr, op, value: Array.isArray(c[op]) ? c[op].join(", ") : String(c[op]) });
    } else if (c.birthday) rows.push({ kind: "birthday", days: String(c.birthday.within_days ?? 7) });
    else if (c.purchased || c.event) {
      const kind = c.purchased ? "purchased" : "event";
      const b = c[kind];
      rows.push({
        kind, within: b.within || "", type: b.type || "", categories: (b.categories || []).join(", "),
        channels: (b.channels || []).join(", "), count: b.count?.gte ? String(b.count.gte) : "", spend: b.spend?.gte || "",
      });
    } else return null;
  }
  return { mode, rows };
}

const BLANK_ROW = { kind: "attr", path: "tier", op: "eq", value: "gold", within: "P90D", type: "", categories: "", channels: "", count: "", spend: "", days: "7" };

export function Segments({ arg, sub }) {
  if (arg && sub === "members") return html`<${Members} segmentId=${arg} />`;
  if (arg) return html`<${SegmentEditor} segmentId=${arg === "new" ? null : arg} />`;
  return html`<${SegmentList} />`;
}

function SegmentList() {
  const { data, error, loading, reload } = useLoad(() => get("/v1/admin/segments", { limit: 200 }), []);
  const [actionError, setActionError] = useState(null);
  async function remove(s) {
    if (!window.confirm(`Delete segment ${s.segment_id}?`)) return;
    try {
      await del(`/v1/admin/segments/${encodeURIComponent(s.segment_id)}`);
      reload();
    } catch (e) {
      setActionError(e);
    }
  }
  return html`<${Page} title="Segments" actions=${html`<a class="button" href="#/segments/new">New segment</a>`}>
    <${ProblemBanner} error=${error || actionError} />
    ${loading && !data ? html`<${Loading} />` : null}
    ${data
      ? html`<${Table} caption="Segments" rows=${data.items} rowKey=${(s) => s.segment_id} empty="No segments yet."
          columns=${[
            { key: "segment_id", label: "Id" },
            { key: "name", label: "Name" },
            { key: "size", label: "Size", num: true },
            { key: "size_as_of", label: "Counted", render: (s) => when(s.size_as_of) },
            {
              key: "_",
              label: "Actions",
              render: (s) => html`<span class="row-actions">
                <a class="button small secondary" href=${`#/segments/${encodeURIComponent(s.segment_id)}`} aria-label=${`Edit ${s.segment_id}`}>Edit</a>
                <a class="button small secondary" href=${`#/segments/${encodeURIComponent(s.segment_id)}/members`} aria-label=${`Members of ${s.segment_id}`}>Members</a>
                <button type="button" class="small danger" onClick=${() => remove(s)} aria-label=${`Delete ${s.segment_id}`}>Delete</button>
              </span>`,
            },
          ]} />`
      : null}
  </${Page}>`;
}

function SegmentEditor({ segmentId }) {
  const existing = useLoad(() => (segmentId ? get(`/v1/admin/segments/${encodeURIComponent(segmentId)}`) : Promise.resolve(null)), [segmentId]);
  if (existing.loading) return html`<${Page} title="Segment"><${Loading} /></${Page}>`;
  if (existing.error) return html`<${Page} title="Segment"><${ProblemBanner} error=${existing.error} /></${Page}>`;
  return html`<${Builder} segment=${existing.data} />`;
}

function Builder({ segment }) {
  const parsed = segment ? rowsOf(segment.rule) : { mode: "all", rows: [{ ...BLANK_ROW }] };
  const [id, setId] = useState(segment?.segment_id || "");
  const [name, setName] = useState(segment?.name || "");
  const [description, setDescription] = useState(segment?.description || "");
  const [mode, setMode] = useState(parsed?.mode || "all");
  const [rows, setRows] = useState(parsed?.rows || []);
  const [asJson, setAsJson] = useState(!parsed);
  const [json, setJson] = useState(JSON.stringify(segment?.rule || { all: [] }, null, 2));
  const [preview, setPreview] = useState(null);
  const [previewError, setPreviewError] = useState(null);
  const [counting, setCounting] = useState(false);
  const [error, setError] = useState(null);
  const [saved, setSaved] = useState(null);

  let rule = null;
  let jsonError = null;
  if (asJson) {
    try {
      rule = JSON.parse(json);
    } catch (e) {
      jsonError = `not valid JSON: ${e.message}`;
    }
  } else rule = { [mode]: rows.map(conditionOf) };
  const ruleText = JSON.stringify(rule);

  // The live preview: 400 ms after the rule last changed, the latest answer wins.
  const latest = useRef(0);
  useEffect(() => {
    if (!rule) return undefined;
    const ticket = ++latest.current;
    setCounting(true);
    const timer = setTimeout(async () => {
      try {
        const answer = await post("/v1/admin/segments/preview", { rule });
        if (ticket === latest.current) {
          setPreview(answer);
          setPreviewError(null);
        }
      } catch (e) {
        if (ticket === latest.current) setPreviewError(e);
      } finally {
        if (ticket === latest.current) setCounting(false);
      }
    }, 400);
    return () => clearTimeout(timer);
  }, [ruleText]);

  const setRow = (i, name) => (e) => {
    const value = e.currentTarget.value;
    setRows((rs) => rs.map((r, j) => (j === i ? { ...r, [name]: value } : r)));
  };
  async function save(event) {
    event.preventDefault();
    setError(null);
    try {
      const body = { name, rule };
      if (description) body.description = description;
      const answer = await put(`/v1/admin/segments/${encodeURIComponent(id.trim())}`, body);
      setSaved(answer);
      // The address names the saved segment; the editor stays (no reload, the message stays).
      if (!segment) window.history.replaceState(null, "", `#/segments/${encodeURIComponent(id.trim())}`);
    } catch (e) {
      setError(e);
    }
  }
  const errors = error instanceof Problem ? error.fields() : {};
  const previewErrors = previewError instanceof Problem ? previewError.fields() : {};
  const ruleErrors = { ...previewErrors, ...errors };
  return html`<${Page} title=${segment ? `Segment ${segment.segment_id}` : "New segment"}>
    <form class="editor" onSubmit=${save} novalidate>
      <${ProblemBanner} error=${error} shown=${["segment_id", "name", "description", "rule"]} />
      <div class="row">
        <${Field} label="Id (segment_id)" name="segment_id" type="text" required value=${id} readOnly=${Boolean(segment || saved)}
          onInput=${(e) => setId(e.currentTarget.value)} errors=${errors} />
        <${Field} label="Name" name="name" type="text" required value=${name} onInput=${(e) => setName(e.currentTarget.value)} errors=${errors} />
        <${Field} label="Description" name="description" type="text" value=${description} onInput=${(e) => setDescription(e.currentTarget.value)} errors=${errors} />
      </div>
      <fieldset class="rule">
        <legend>Rule</legend>
        <datalist id="segment-paths">${PATHS.map((p) => html`<option value=${p} />`)}</datalist>
        <${Field} label="Edit the rule as JSON (nesting, not)" name="as_json" type="checkbox" checked=${asJson}
          onChange=${(e) => {
            if (e.currentTarget.checked) setJson(JSON.stringify(rule || { all: [] }, null, 2));
            else {
              const back = rule && rowsOf(rule);
              if (!back) return;
              setMode(back.mode);
              setRows(back.rows);
            }
            setAsJson(e.currentTarget.checked);
          }} />
        ${asJson
          ? html`<${Field} label="Rule (JSON)" name="rule" type="textarea" rows="10" class="code" value=${json}
              onInput=${(e) => setJson(e.currentTarget.value)} errors=${jsonError ? { rule: jsonError } : ruleErrors} />`
          : html`<${Field} label="Customers who match" name="mode" type="select" value=${mode} onChange=${(e) => setMode(e.currentTarget.value)}
                options=${[{ value: "all", label: "all of these conditions" }, { value: "any", label: "any of these conditions" }]} />
              <ol class="conditions">
                ${rows.map((row, i) => html`<li key=${i}>
                  <${ConditionRow} row=${row} index=${i} set=${(name) => setRow(i, name)}
                    error=${errorFor(ruleErrors, `rule.${mode}.${i}`)} remove=${() => setRows((rs) => rs.filter((_, j) => j !== i))} />
                </li>`)}
              </ol>
              <button type="button" class="secondary" onClick=${() => setRows((rs) => [...rs, { ...BLANK_ROW }])}>Add a condition</button>
              ${errorFor(ruleErrors, "rule") && !rows.length ? html`<p class="field-error">${errorFor(ruleErrors, "rule")}</p>` : null}`}
      </fieldset>
      <section class="preview" aria-labelledby="preview-h">
        <h2 id="preview-h">Preview</h2>
        <div aria-live="polite" role="status" class="preview-count">
          ${counting ? html`<span class="loading">Counting…</span>` : null}
          ${preview && !counting
            ? html`<strong class="count">${preview.count}</strong> customers match (${preview.members} members, ${preview.non_members} non-members);
                reachable by email ${preview.reachable?.email ?? 0}, SMS ${preview.reachable?.sms ?? 0}, mail ${preview.reachable?.mail ?? 0}.`
            : null}
        </div>
        ${previewError ? html`<${ProblemBanner} error=${previewError} shown=${["rule"]} />` : null}
        ${preview?.sample?.length
          ? html`<p>Sample: ${preview.sample.map((c) => html`<a href=${`#/customers/${encodeURIComponent(c)}`}>${c}</a> `)}</p>`
          : null}
      </section>
      ${saved ? html`<p class="ok" role="status">Saved: ${saved.size ?? "?"} members as of ${when(saved.size_as_of)}.</p>` : null}
      <div class="actions">
        <button type="submit">Save segment</button>
        <a class="button secondary" href="#/segments">Back to segments</a>
        ${segment ? html`<a class="button secondary" href=${`#/segments/${encodeURIComponent(segment.segment_id)}/members`}>Members</a>` : null}
      </div>
    </form>
  </${Page}>`;
}

function ConditionRow({ row, index, set, error, remove }) {
  const n = index + 1;
  const kind = html`<${Field} label=${`Condition ${n}`} name=${`kind-${n}`} type="select" value=${row.kind} options=${KINDS} onChange=${set("kind")} />`;
  let fields;
  if (row.kind === "attr") {
    fields = html`
      <${Field} label="Path" name=${`path-${n}`} type="text" list="segment-paths" value=${row.path} onInput=${set("path")}
        hint="a listed path, or profile.attributes.<name>" />
      <${Field} label="Operator" name=${`op-${n}`} type="select" value=${row.op} options=${OPS} onChange=${set("op")} />
      <${Field} label="Value" name=${`value-${n}`} type="text" value=${row.value} onInput=${set("value")}
        hint=${row.op === "within" || row.op === "before" ? "ISO 8601 duration: P90D" : row.op === "in" || row.op === "not_in" ? "comma-separated" : null} />`;
  } else if (row.kind === "birthday") {
    fields = html`<${Field} label="Within days" name=${`days-${n}`} type="number" min="0" value=${row.days} onInput=${set("days")} />`;
  } else {
    fields = html`
      ${row.kind === "event" ? html`<${Field} label="Event type" name=${`type-${n}`} type="text" value=${row.type} onInput=${set("type")} />` : null}
      <${Field} label="Within" name=${`within-${n}`} type="text" value=${row.within} onInput=${set("within")} hint="P90D, PT2H" />
      ${row.kind === "purchased"
        ? html`<${Field} label="Categories" name=${`categories-${n}`} type="text" value=${row.categories} onInput=${set("categories")} hint="comma-separated" />
            <${Field} label="Channels" name=${`channels-${n}`} type="text" value=${row.channels} onInput=${set("channels")} hint="pos, online" />
            <${Field} label="Spend at least" name=${`spend-${n}`} type="text" value=${row.spend} onInput=${set("spend")} />`
        : null}
      <${Field} label="At least (times)" name=${`count-${n}`} type="number" min="1" value=${row.count} onInput=${set("count")} />`;
  }
  return html`<div class=${`condition${error ? " invalid" : ""}`}>
    <div class="row">${kind}${fields}
      <div class="field submit"><button type="button" class="small danger" onClick=${remove} aria-label=${`Remove condition ${n}`}>Remove</button></div>
    </div>
    ${error ? html`<p class="field-error">${error}</p>` : null}
  </div>`;
}

function Members({ segmentId }) {
  const [pages, setPages] = useState([]);
  const [cursor, setCursor] = useState(undefined);
  const [error, setError] = useState(null);
  const first = useLoad(async () => {
    const page = await get(`/v1/admin/segments/${encodeURIComponent(segmentId)}/customers`, { limit: 50 });
    setPages([page.items]);
    setCursor(page.next_cursor);
    return page;
  }, [segmentId]);
  async function more() {
    try {
      const page = await get(`/v1/admin/segments/${encodeURIComponent(segmentId)}/customers`, { limit: 50, cursor });
      setPages((p) => [...p, page.items]);
      setCursor(page.next_cursor);
    } catch (e) {
      setError(e);
    }
  }
  const items = pages.flat().map((m) => (typeof m === "string" ? { customer_id: m } : m));
  return html`<${Page} title=${`Members of ${segmentId}`} actions=${html`<a class="button secondary" href=${`#/segments/${encodeURIComponent(segmentId)}`}>Edit the segment</a>`}>
    <${ProblemBanner} error=${first.error || error} />
    ${first.loading && !items.length ? html`<${Loading} />` : null}
    <${Table} caption="Members" rows=${items} rowKey=${(m) => m.customer_id} empty="No members."
      columns=${[
        { key: "customer_id", label: "Customer", render: (m) => html`<a href=${`#/customers/${encodeURIComponent(m.customer_id)}`}>${m.customer_id}</a>` },
        { key: "member", label: "Member", render: (m) => (m.member ? "yes" : "no, identified") },
        { key: "entered_at", label: "Entered", render: (m) => when(m.entered_at) },
      ]} />
    ${cursor ? html`<button type="button" class="secondary" onClick=${more}>More members</button>` : null}
  </${Page}>`;
}
