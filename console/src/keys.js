// API keys: admins only (the console hides this screen from marketers, and the API refuses them).
import { useState } from "preact/hooks";
import { Problem, del, get, post } from "./api.js";
import { Field, Loading, Page, ProblemBanner, Table, html, useLoad, when } from "./ui.js";

export function Keys() {
  const { data, error, loading, reload } = useLoad(() => get("/v1/admin/api-keys", { limit: 200 }), []);
  const [form, setForm] = useState({ kind: "marketer", store_id: "", name: "" });
  const [formError, setFormError] = useState(null);
  const [issued, setIssued] = useState(null);
  const set = (name) => (e) => setForm((f) => ({ ...f, [name]: e.currentTarget.value }));

  async function create(event) {
    event.preventDefault();
    setFormError(null);
    setIssued(null);
    try {
      const body = { kind: form.kind, name: form.name };
      if (form.store_id) body.store_id = form.store_id;
      setIssued(await post("/v1/admin/api-keys", body));
      reload();
    } catch (e) {
      setFormError(e);
    }
  }
  async function revoke(key) {
    if (!window.confirm(`Revoke ${key.name}? It stops working within seconds.`)) return;
    try {
      await del(`/v1/admin/api-keys/${key.key_id}`);
      reload();
    } catch (e) {
      setFormError(e);
    }
  }
  const errors = formError instanceof Problem ? formError.fields() : null;
  return html`<${Page} title="API keys">
    <form class="inline" onSubmit=${create} aria-labelledby="new-key-h">
      <h2 id="new-key-h">New key</h2>
      <div class="row">
        <${Field} label="Kind" name="kind" type="select" value=${form.kind} onChange=${set("kind")} errors=${errors}
          options=${["marketer", "pos", "web", "admin"]} />
        <${Field} label="Store (tills and web shops)" name="store_id" type="text" value=${form.store_id} onInput=${set("store_id")} errors=${errors} />
        <${Field} label="Name" name="name" type="text" required value=${form.name} onInput=${set("name")} errors=${errors} />
        <div class="field submit"><button type="submit">Create key</button></div>
      </div>
      <${ProblemBanner} error=${formError} shown=${["kind", "store_id", "name"]} />
      ${issued
        ? html`<p class="ok" role="status">Key <strong>${issued.name}</strong> created. Its secret is shown this once:
            <code class="secret">${issued.api_key}</code></p>`
        : null}
    </form>
    <${ProblemBanner} error=${error} />
    ${loading && !data ? html`<${Loading} />` : null}
    ${data
      ? html`<${Table} caption="API keys (secrets are never shown again)" rows=${data.items} rowKey=${(k) => k.key_id}
          columns=${[
            { key: "name", label: "Name" },
            { key: "kind", label: "Kind" },
            { key: "store_id", label: "Store" },
            { key: "created_at", label: "Created", render: (k) => when(k.created_at) },
            { key: "revoked_at", label: "Revoked", render: (k) => when(k.revoked_at) },
            {
              key: "_",
              label: "Actions",
              render: (k) => (k.revoked_at ? "—" : html`<button type="button" class="small danger" onClick=${() => revoke(k)} aria-label=${`Revoke ${k.name}`}>Revoke</button>`),
            },
          ]} />`
      : null}
  </${Page}>`;
}
