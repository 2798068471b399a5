// Offers, challenges, badges and templates: one list / create / edit / pause screen, described per kind.
import { useState } from "preact/hooks";
import { Problem, del, get, post, put } from "./api.js";
import { Field, Loading, Page, ProblemBanner, Table, html, useLoad, when } from "./ui.js";

const STATUS = (values) => ({ name: "status", label: "Status", type: "select", options: values });
const TEXT = (name, label, extra = {}) => ({ name, label, type: "text", ...extra });
const JSONF = (name, label, hint) => ({ name, label, json: true, hint });
const TIME = (name, label) => TEXT(name, label, { hint: "RFC 3339, UTC: 2026-12-01T00:00:00Z; empty for none", nullable: true });

export const KINDS = {
  offers: {
    title: "Offers",
    one: "offer",
    id: "offer_id",
    list: "/v1/admin/offers",
    create: (body) => post("/v1/admin/offers", body),
    save: (id, body) => put(`/v1/admin/offers/${id}`, body),
    pause: (item) => post(`/v1/admin/offers/${item.offer_id}/${item.status === "paused" ? "activate" : "pause"}`),
    columns: [
      { key: "offer_id", label: "Id" },
      { key: "name", label: "Name" },
      { key: "status", label: "Status" },
      { key: "effect", label: "Effect", render: (o) => `${o.effect.type}${o.effect.value ? ` ${o.effect.value}` : ""}` },
      { key: "valid_until", label: "Valid until", render: (o) => when(o.valid_until) },
    ],
    fields: [
      TEXT("name", "Name", { required: true }),
      STATUS(["active", "paused", "draft"]),
      TIME("valid_from", "Valid from"),
      TIME("valid_until", "Valid until"),
      { name: "priority", label: "Priority", type: "number", number: true },
      { name: "stacking", label: "Stacking", type: "select", options: ["stackable", "exclusive", "best_of", "exclusive_units"] },
      { name: "requires_coupon", label: "Only with a coupon", type: "checkbox" },
      JSONF("effect", "Effect (JSON)", '{"type": "percent_off", "value": "10", "applies_to": "lines"}'),
      JSONF("audience", "Audience (JSON)", "members_only, tiers, price_groups, segments, first_purchase"),
      JSONF("where", "Where (JSON)", "channels, stores, store_formats, store_attributes"),
      JSONF("condition", "Condition (JSON)", "min_subtotal, skus, categories, min_quantity"),
      JSONF("limits", "Limits (JSON)", "per_customer, budget"),
    ],
    blank: { name: "", status: "draft", stacking: "stackable", effect: { type: "percent_off", value: "10", applies_to: "basket" } },
  },
  challenges: {
    title: "Challenges",
    one: "challenge",
    id: "challenge_id",
    list: "/v1/admin/challenges",
    save: (id, body) => put(`/v1/admin/challenges/${id}`, body),
    idInBody: true,
    pause: (item) => put(`/v1/admin/challenges/${item.challenge_id}`, { ...item, status: item.status === "paused" ? "active" : "paused" }),
    columns: [
      { key: "challenge_id", label: "Id" },
      { key: "name", label: "Name" },
      { key: "status", label: "Status" },
      { key: "tasks", label: "Tasks", render: (c) => c.tasks.length, num: true },
      { key: "reward", label: "Reward", render: (c) => (c.reward.points ? `${c.reward.points} points` : `coupon ${c.reward.coupon?.offer_id}`) },
    ],
    fields: [
      TEXT("name", "Name", { required: true }),
      STATUS(["active", "paused", "draft"]),
      TIME("valid_from", "Valid from"),
      TIME("valid_until", "Valid until"),
      { name: "repeatable", label: "Repeatable (a punch card)", type: "checkbox" },
      JSONF("tasks", "Tasks (JSON)", '[{"task_id": "t1", "event": {"type": "store_visit"}, "count": 3}]'),
      JSONF("reward", "Reward (JSON)", '{"points": 100} or {"coupon": {"offer_id": "…", "valid_days": 30}}'),
      JSONF("audience", "Audience (JSON)", "as offers, segments included"),
    ],
    blank: { name: "", status: "draft", tasks: [{ task_id: "t1", event: { type: "store_visit" }, count: 3 }], reward: { points: 100 }, repeatable: false },
  },
  badges: {
    title: "Badges",
    one: "badge",
    id: "badge_id",
    list: "/v1/admin/badges",
    save: (id, body) => put(`/v1/admin/badges/${id}`, body),
    idInBody: true,
    pause: (item) => put(`/v1/admin/badges/${item.badge_id}`, { ...item, status: item.status === "paused" ? "active" : "paused" }),
    columns: [
      { key: "badge_id", label: "Id" },
      { key: "name", label: "Name" },
      { key: "status", label: "Status" },
      { key: "when", label: "When", render: (b) => `${b.when.metric} ≥ ${b.when.gte}` },
    ],
    fields: [
      TEXT("name", "Name", { required: true }),
      TEXT("description", "Description", { nullable: true }),
      STATUS(["active", "paused"]),
      JSONF("when", "When (JSON)", '{"metric": "transactions", "gte": 10}'),
    ],
    blank: { name: "", status: "active", when: { metric: "transactions", gte: 10 } },
  },
  templates: {
    title: "Templates",
    one: "template",
    id: "template_id",
    list: "/v1/admin/templates",
    save: (id, body) => put(`/v1/admin/templates/${id}`, body),
    remove: (item) => del(`/v1/admin/templates/${item.template_id}`),
    columns: [
      { key: "template_id", label: "Id" },
      { key: "channel", label: "Channel" },
      { key: "purpose", label: "Purpose" },
      { key: "subject", label: "Subject" },
      { key: "updated_at", label: "Updated", render: (t) => when(t.updated_at) },
    ],
    fields: [
      { name: "channel", label: "Channel", type: "select", options: ["email", "sms", "mail", "api"] },
      { name: "purpose", label: "Purpose", type: "select", options: ["message", "confirmation"] },
      TEXT("subject", "Subject", { nullable: true }),
      { name: "body", label: "Body", type: "textarea", rows: 6, hint: "Placeholders: {{ first_name }}, {{ points.available }}, {{ unsubscribe_url }} (email)" },
      { name: "html", label: "HTML (optional)", type: "textarea", rows: 4, nullable: true },
    ],
    readOnly: ["placeholders", "created_at", "updated_at"],
    blank: { channel: "email", purpose: "message", subject: "", body: "Hello {{ first_name }}\n\n{{ unsubscribe_url }}" },
  },
};

function strip(item, ...names) {
  const out = { ...item };
  for (const n of names) delete out[n];
  return out;
}

export function Catalogue({ kind, navigate, editing }) {
  const k = KINDS[kind];
  const { data, error, loading, reload } = useLoad(() => get(k.list, { limit: 200 }), [kind]);
  const [actionError, setActionError] = useState(null);
  const [done, setDone] = useState(null);

  async function act(item, action, label) {
    setActionError(null);
    try {
      await action(item);
      setDone(`${label}: ${item[k.id]}`);
      reload();
    } catch (e) {
      setActionError(e);
    }
  }
  if (editing !== undefined) {
    const item = editing === "new" ? null : (data?.items || []).find((i) => i[k.id] === editing);
    if (editing !== "new" && loading) return html`<${Page} title=${k.title}><${Loading} /></${Page}>`;
    return html`<${Editor} k=${k} item=${item} onDone=${(msg) => {
      setDone(msg);
      reload();
      navigate(`#/${kind}`);
    }} onCancel=${() => navigate(`#/${kind}`)} />`;
  }
  const columns = [
    ...k.columns,
    {
      key: "_actions",
      label: "Actions",
      render: (item) => html`<span class="row-actions">
        <a class="button small secondary" href=${`#/${kind}/${encodeURIComponent(item[k.id])}`} aria-label=${`Edit ${item[k.id]}`}>Edit</a>
        ${k.pause
          ? html`<button type="button" class="small secondary" onClick=${() => act(item, k.pause, item.status === "paused" ? "Activated" : "Paused")}
              aria-label=${`${item.status === "paused" ? "Activate" : "Pause"} ${item[k.id]}`}>${item.status === "paused" ? "Activate" : "Pause"}</button>`
          : null}
        ${k.remove
          ? html`<button type="button" class="small danger" onClick=${() => window.confirm(`Delete ${item[k.id]}?`) && act(item, k.remove, "Deleted")}
              aria-label=${`Delete ${item[k.id]}`}>Delete</button>`
          : null}
      </span>`,
    },
  ];
  return html`<${Page} title=${k.title} actions=${html`<a class="button" href=${`#/${kind}/new`}>New ${k.one}</a>`}>
    ${done ? html`<p class="ok" role="status">${done}</p>` : null}
    <${ProblemBanner} error=${error || actionError} />
    ${loading && !data ? html`<${Loading} />` : null}
    ${data ? html`<${Table} caption=${k.title} rows=${data.items} rowKey=${(i) => i[k.id]} columns=${columns} empty=${`No ${k.title.toLowerCase()} yet.`} />` : null}
  </${Page}>`;
}

function initial(k, item) {
  const source = item || k.blank;
  const values = { [k.id]: item ? item[k.id] : "" };
  for (const f of k.fields) {
    const v = source[f.name];
    values[f.name] = f.json ? (v === undefined ? "" : JSON.stringify(v, null, 2)) : f.type === "checkbox" ? Boolean(v) : (v ?? "");
  }
  return values;
}

function Editor({ k, item, onDone, onCancel }) {
  const [values, setValues] = useState(() => initial(k, item));
  const [error, setError] = useState(null);
  const [local, setLocal] = useState({});
  const [busy, setBusy] = useState(false);
  const set = (name) => (e) => {
    const t = e.currentTarget;
    setValues((v) => ({ ...v, [name]: t.type === "checkbox" ? t.checked : t.value }));
  };

  function body() {
    const out = item ? strip(item, k.id, ...(k.readOnly || [])) : {};
    const bad = {};
    for (const f of k.fields) {
      const raw = values[f.name];
      if (f.json) {
        if (raw.trim() === "") {
          delete out[f.name];
          continue;
        }
        try {
          out[f.name] = JSON.parse(raw);
        } catch (e) {
          bad[f.name] = `not valid JSON: ${e.message}`;
        }
      } else if (f.type === "select" && raw === "") {
        delete out[f.name]; // the API's default
      } else if (f.number) {
        if (raw === "") delete out[f.name];
        else out[f.name] = Number(raw);
      } else if (f.nullable && raw === "") {
        out[f.name] = null;
      } else {
        out[f.name] = raw;
      }
    }
    return [out, bad];
  }

  async function save(event) {
    event.preventDefault();
    setError(null);
    const [payload, bad] = body();
    setLocal(bad);
    if (Object.keys(bad).length) return;
    const id = values[k.id].trim();
    setBusy(true);
    try {
      if (!item && k.create) await k.create(id ? { ...payload, [k.id]: id } : payload);
      else await k.save(encodeURIComponent(id), k.idInBody ? { ...payload, [k.id]: id } : payload);
      onDone(`${item ? "Saved" : "Created"} ${k.one} ${id}`.trim());
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  }
  const errors = { ...(error instanceof Problem ? error.fields() : {}), ...local };
  const shown = [k.id, ...k.fields.map((f) => f.name)];
  return html`<${Page} title=${item ? `Edit ${k.one} ${item[k.id]}` : `New ${k.one}`}>
    <form class="editor" onSubmit=${save} novalidate>
      <${ProblemBanner} error=${error} shown=${shown} />
      <${Field} label=${`Id (${k.id})`} name=${k.id} type="text" value=${values[k.id]} readOnly=${Boolean(item)}
        required=${!k.create} hint=${k.create && !item ? "Leave empty to have one generated" : "Letters, digits, - and _"}
        onInput=${set(k.id)} errors=${errors} />
      ${k.fields.map((f) => {
        const { json, number, nullable, ...props } = f;
        if (f.type === "select") props.options = [{ value: "", label: "(default)" }, ...f.options];
        const type = json ? "textarea" : f.type;
        const value = f.type === "checkbox" ? undefined : values[f.name];
        return html`<${Field} key=${f.name} ...${props} type=${type} rows=${json ? 5 : f.rows}
          class=${json ? "code" : undefined} value=${value} checked=${f.type === "checkbox" ? values[f.name] : undefined}
          onInput=${set(f.name)} onChange=${set(f.name)} errors=${errors} />`;
      })}
      <div class="actions">
        <button type="submit" disabled=${busy}>${item ? "Save" : "Create"}</button>
        <button type="button" class="secondary" onClick=${onCancel}>Cancel</button>
      </div>
    </form>
  </${Page}>`;
}
