// Customers: find one by any link or by id, then the 360° view and the timeline, paged.
import { useState } from "preact/hooks";
import { Problem, get, post } from "./api.js";
import { Field, Loading, Page, ProblemBanner, Table, fmt, html, useLoad, when } from "./ui.js";

const LINK_TYPES = [
  { value: "email", label: "Email" },
  { value: "phone", label: "Phone" },
  { value: "card", label: "Loyalty card" },
  { value: "id", label: "Customer id" },
  { value: "coupon", label: "Coupon code" },
];

export function CustomerSearch({ navigate }) {
  const [type, setType] = useState("email");
  const [value, setValue] = useState("");
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);

  async function find(event) {
    event.preventDefault();
    setError(null);
    setBusy(true);
    try {
      const wanted = encodeURIComponent(value.trim());
      let found;
      if (type === "id") found = await get(`/v1/customers/${wanted}`);
      else if (type === "coupon") found = await get(`/v1/coupons/${wanted}`);
      else found = await get("/v1/customers", { link_type: type, link_value: value.trim() });
      if (!found.customer_id) {
        setError(new Problem(404, { title: "Not a personal coupon", detail: `coupon ${found.code} (offer ${found.offer_id}, ${found.state}) belongs to no customer` }));
        return;
      }
      navigate(`#/customers/${encodeURIComponent(found.customer_id)}`);
    } catch (e) {
      if (e instanceof Problem && e.status === 404) {
        setError(new Problem(404, { title: "No customer found", detail: `no customer has ${type} ${value}` }));
      } else setError(e);
    } finally {
      setBusy(false);
    }
  }

  const errors = error instanceof Problem ? remap(error.fields()) : null;
  return html`<${Page} title="Customers">
    <form class="search" onSubmit=${find} aria-describedby="search-help">
      <p id="search-help" class="hint">Find a customer by any of their links, or by the platform's id.</p>
      <div class="row">
        <${Field} label="Find by" name="link_type" type="select" options=${LINK_TYPES} value=${type}
          onChange=${(e) => setType(e.currentTarget.value)} errors=${errors} />
        <${Field} label="Value" name="link_value" type="search" required value=${value} autocomplete="off"
          placeholder=${type === "email" ? "anna.devries@demo.example" : ""}
          onInput=${(e) => setValue(e.currentTarget.value)} errors=${errors} />
        <div class="field submit"><button type="submit" disabled=${busy}>Find</button></div>
      </div>
    </form>
    <${ProblemBanner} error=${error} shown=${["link_type", "link_value", "customer_id", "code"]} />
  </${Page}>`;
}

// A lookup's query errors name link_type / link_value; an id or code lookup's path error names
// customer_id or code: all are about the one value field.
function remap(fields) {
  const out = { ...fields };
  for (const other of ["customer_id", "code"]) if (out[other]) out.link_value = out[other];
  return out;
}

export function CustomerView({ customerId, navigate }) {
  const { data, error, loading } = useLoad(() => get(`/v1/customers/${encodeURIComponent(customerId)}`), [customerId]);
  if (loading && !data) return html`<${Page} title="Customer"><${Loading} /></${Page}>`;
  if (error) return html`<${Page} title="Customer"><${ProblemBanner} error=${error} /></${Page}>`;
  const c = data;
  const name = [c.profile?.first_name, c.profile?.last_name].filter(Boolean).join(" ") || c.customer_id;
  return html`<${Page} title=${name} actions=${html`<a class="button secondary" href="#/customers">Find another</a>`}>
    ${c.customer_id !== customerId
      ? html`<p class="note">This id was merged into <code>${c.customer_id}</code>.</p>`
      : null}
    <div class="cards" aria-label="Summary">
      ${card("Status", `${c.member ? "Member" : "Identified non-member"} · ${c.status}`)}
      ${card("Tier", c.tier || "—")}
      ${card("Points available", c.points?.available ?? 0)}
      ${card("Points pending", c.points?.pending ?? 0)}
      ${card("Lifetime points", c.points?.lifetime ?? 0)}
      ${card("Purchases", `${c.stats?.transactions ?? 0} · ${c.stats?.spend ?? "0.00"}`)}
    </div>
    <div class="grid2">
      <section aria-labelledby="links-h">
        <h2 id="links-h">Profile and links</h2>
        <dl class="facts">
          <dt>Customer id</dt><dd><code>${c.customer_id}</code></dd>
          ${(c.links || []).map((l) => html`<dt>${l.type}</dt><dd>${l.value}</dd>`)}
          <dt>Consents</dt><dd>${Object.entries(c.consents || {}).filter(([, v]) => v).map(([k]) => k).join(", ") || "none"}</dd>
          <dt>Created</dt><dd>${when(c.created_at)}</dd>
          <dt>Enrolled</dt><dd>${when(c.enrolled_at)}</dd>
          <dt>Last purchase</dt><dd>${when(c.stats?.last_purchase_at)}</dd>
        </dl>
      </section>
      <section aria-labelledby="seg-h">
        <h2 id="seg-h">Segments and scores</h2>
        <p>${(c.segments || []).length ? c.segments.map((s) => html`<span class="tag">${s.segment_id || s}</span> `) : "In no segment."}</p>
        <p>${c.scores ? html`RFM <strong>${c.scores.rfm ?? "—"}</strong> (R ${c.scores.r ?? "—"}, F ${c.scores.f ?? "—"}, M ${c.scores.m ?? "—"})` : "No scores yet."}</p>
        <h2 id="badges-h">Badges</h2>
        <p>${(c.badges || []).length ? c.badges.map((b) => html`<span class="tag" title=${when(b.earned_at)}>${b.badge_id}</span> `) : "No badges yet."}</p>
      </section>
    </div>
    <section aria-labelledby="acc-h">
      <h2 id="acc-h">Accounts</h2>
      <${Table} caption="Stored-value accounts" rows=${c.accounts || []} empty="No stored-value accounts."
        columns=${[
          { key: "kind", label: "Kind" },
          { key: "account_id", label: "Account" },
          { key: "balance", label: "Balance", num: true },
          { key: "currency", label: "Currency" },
          { key: "expires_at", label: "Expires", render: (a) => when(a.expires_at) },
        ]} />
    </section>
    <${Challenges} customerId=${c.customer_id} />
    <${Coupons} customerId=${c.customer_id} />
    <${Timeline} customerId=${c.customer_id} />
  </${Page}>`;
}

const card = (label, value) => html`<div class="card"><span class="card-label">${label}</span><span class="card-value">${fmt(value)}</span></div>`;

function Challenges({ customerId }) {
  const { data, error } = useLoad(() => get(`/v1/customers/${customerId}/challenges`), [customerId]);
  return html`<section aria-labelledby="ch-h">
    <h2 id="ch-h">Challenges</h2>
    <${ProblemBanner} error=${error} />
    ${data
      ? html`<${Table} caption="Challenge progress" rows=${data.items} empty="No challenges for this customer."
          columns=${[
            { key: "name", label: "Challenge" },
            { key: "progress", label: "Progress", render: (ch) => ch.tasks.map((t) => `${t.task_id} ${t.progress}/${t.count}`).join(", ") },
            { key: "completions", label: "Completed", num: true },
            { key: "completed_at", label: "Last completed", render: (ch) => when(ch.completed_at) },
          ]} />`
      : null}
  </section>`;
}

function Coupons({ customerId }) {
  const list = useLoad(() => get(`/v1/customers/${customerId}/coupons`, { limit: 20 }), [customerId]);
  const offers = useLoad(() => get("/v1/admin/offers", { limit: 200 }), []);
  const [offerId, setOfferId] = useState("");
  const [validUntil, setValidUntil] = useState("");
  const [error, setError] = useState(null);
  const [issued, setIssued] = useState(null);

  async function issue(event) {
    event.preventDefault();
    setError(null);
    try {
      const body = { offer_id: offerId, source: "manual" };
      if (validUntil) body.valid_until = new Date(`${validUntil}T23:59:59Z`).toISOString().replace(".000", "");
      setIssued(await post(`/v1/customers/${customerId}/coupons`, body));
      list.reload();
    } catch (e) {
      setError(e);
    }
  }
  const errors = error instanceof Problem ? error.fields() : null;
  const choices = [{ value: "", label: "Choose an offer" }, ...(offers.data?.items || []).map((o) => ({ value: o.offer_id, label: `${o.name} (${o.offer_id})` }))];
  return html`<section aria-labelledby="cp-h">
    <h2 id="cp-h">Coupons</h2>
    ${list.data
      ? html`<${Table} caption="Coupons, newest first" rows=${list.data.items} empty="No coupons."
          columns=${[
            { key: "code", label: "Code" },
            { key: "offer_id", label: "Offer" },
            { key: "state", label: "State" },
            { key: "valid_until", label: "Valid until", render: (x) => when(x.valid_until) },
          ]} />`
      : null}
    <form class="inline" onSubmit=${issue} aria-labelledby="issue-h">
      <h3 id="issue-h">Issue a coupon</h3>
      <div class="row">
        <${Field} label="Offer" name="offer_id" type="select" options=${choices} value=${offerId} required
          onChange=${(e) => setOfferId(e.currentTarget.value)} errors=${errors} />
        <${Field} label="Valid until (optional)" name="valid_until" type="date" value=${validUntil}
          onInput=${(e) => setValidUntil(e.currentTarget.value)} errors=${errors} />
        <div class="field submit"><button type="submit">Issue coupon</button></div>
      </div>
      ${issued ? html`<p class="ok" role="status">Issued coupon <code>${issued.code}</code>.</p>` : null}
      <${ProblemBanner} error=${error} shown=${["offer_id", "valid_until"]} />
    </form>
  </section>`;
}

const PAGE = 10; // timeline items a page

function Timeline({ customerId }) {
  const [pages, setPages] = useState([]);
  const [cursor, setCursor] = useState(undefined);
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const first = useLoad(async () => {
    const page = await get(`/v1/customers/${customerId}/timeline`, { limit: PAGE });
    setPages([page.items]);
    setCursor(page.next_cursor);
    return page;
  }, [customerId]);

  async function more() {
    setBusy(true);
    try {
      const page = await get(`/v1/customers/${customerId}/timeline`, { limit: PAGE, cursor });
      setPages((p) => [...p, page.items]);
      setCursor(page.next_cursor);
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  }
  const items = pages.flat();
  return html`<section aria-labelledby="tl-h">
    <h2 id="tl-h">Timeline</h2>
    <${ProblemBanner} error=${first.error || error} />
    ${first.loading && !items.length ? html`<${Loading} what="Loading the timeline" />` : null}
    ${!first.loading && !items.length ? html`<p class="empty">Nothing has happened yet.</p>` : null}
    <ol class="timeline" aria-label="Timeline, newest first">
      ${items.map(
        (it, i) => html`<li key=${i} class=${`tl-${it.kind}`}>
          <time datetime=${it.at}>${when(it.at)}</time>
          <span class="tag">${it.kind}</span>
          <span class="tl-summary">${it.summary}</span>
        </li>`,
      )}
    </ol>
    ${cursor ? html`<button type="button" class="secondary" onClick=${more} disabled=${busy}>Older events</button>` : null}
  </section>`;
}
