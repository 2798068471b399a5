// Campaigns: a form for trigger, audience, actions, control group and limits; a dry run with its cost;
// start, pause; a run's progress while it runs; the uplift report.
import { useEffect, useState } from "preact/hooks";
import { Problem, get, post, put } from "./api.js";
import { Field, Loading, Page, ProblemBanner, Table, errorFor, fmt, html, useLoad, when } from "./ui.js";

const TRIGGERS = ["manual", "schedule", "event", "birthday", "inactivity"];
const ACTIONS = ["coupon", "points", "promo_cash", "message"];
const num = (v) => (v === "" || v === undefined || v === null ? undefined : Number(v));

export function Campaigns({ navigate, arg, sub }) {
  if (arg && sub === "runs") return html`<${CampaignRuns} campaignId=${arg} />`;
  if (arg) return html`<${CampaignEditor} campaignId=${arg === "new" ? null : arg} navigate=${navigate} />`;
  return html`<${CampaignList} />`;
}

function CampaignList() {
  const { data, error, loading, reload } = useLoad(() => get("/v1/admin/campaigns", { limit: 200 }), []);
  const [actionError, setActionError] = useState(null);
  async function toggle(c) {
    try {
      const { campaign_id: id, ...rest } = c;
      await put(`/v1/admin/campaigns/${encodeURIComponent(id)}`, { ...strip(rest), status: c.status === "active" ? "paused" : "active" });
      reload();
    } catch (e) {
      setActionError(e);
    }
  }
  return html`<${Page} title="Campaigns" actions=${html`<a class="button" href="#/campaigns/new">New campaign</a>`}>
    <${ProblemBanner} error=${error || actionError} />
    ${loading && !data ? html`<${Loading} />` : null}
    ${data
      ? html`<${Table} caption="Campaigns" rows=${data.items} rowKey=${(c) => c.campaign_id} empty="No campaigns yet."
          columns=${[
            { key: "campaign_id", label: "Id" },
            { key: "name", label: "Name" },
            { key: "status", label: "Status" },
            { key: "trigger", label: "Trigger", render: (c) => c.trigger?.type },
            { key: "audience", label: "Audience", render: (c) => c.audience?.segment_id },
            {
              key: "_",
              label: "Actions",
              render: (c) => html`<span class="row-actions">
                <a class="button small secondary" href=${`#/campaigns/${encodeURIComponent(c.campaign_id)}`} aria-label=${`Edit ${c.campaign_id}`}>Edit</a>
                <a class="button small secondary" href=${`#/campaigns/${encodeURIComponent(c.campaign_id)}/runs`} aria-label=${`Dry run and runs of ${c.campaign_id}`}>Runs</a>
                ${["active", "paused"].includes(c.status)
                  ? html`<button type="button" class="small secondary" onClick=${() => toggle(c)} aria-label=${`${c.status === "active" ? "Pause" : "Activate"} ${c.campaign_id}`}>${c.status === "active" ? "Pause" : "Activate"}</button>`
                  : null}
              </span>`,
            },
          ]} />`
      : null}
  </${Page}>`;
}

// What the API adds to a campaign that a PUT does not take back.
function strip(c) {
  const out = { ...c };
  for (const k of ["created_at", "updated_at", "version", "last_run"]) delete out[k];
  return out;
}

function CampaignEditor({ campaignId, navigate }) {
  const existing = useLoad(() => (campaignId ? get(`/v1/admin/campaigns/${encodeURIComponent(campaignId)}`) : Promise.resolve(null)), [campaignId]);
  const segments = useLoad(() => get("/v1/admin/segments", { limit: 200 }).catch(() => ({ items: [] })), []);
  const offers = useLoad(() => get("/v1/admin/offers", { limit: 200 }), []);
  const templates = useLoad(() => get("/v1/admin/templates", { limit: 200 }), []);
  if (existing.loading) return html`<${Page} title="Campaign"><${Loading} /></${Page}>`;
  if (existing.error) return html`<${Page} title="Campaign"><${ProblemBanner} error=${existing.error} /></${Page}>`;
  return html`<${CampaignForm} campaign=${existing.data} navigate=${navigate}
    segments=${segments.data?.items || []} offers=${offers.data?.items || []} templates=${templates.data?.items || []} />`;
}

function CampaignForm({ campaign, navigate, segments, offers, templates }) {
  const c = campaign || {};
  const [f, setF] = useState({
    campaign_id: c.campaign_id || "",
    name: c.name || "",
    status: c.status || "draft",
    trigger: c.trigger?.type || "manual",
    at: c.trigger?.at || "",
    cron: c.trigger?.cron || "",
    timezone: c.trigger?.timezone || "",
    event: c.trigger?.event || "CustomerEnrolled",
    days: String(c.trigger?.days_before ?? c.trigger?.days ?? ""),
    segment_id: c.audience?.segment_id || "",
    members_only: Boolean(c.audience?.members_only),
    control: String(c.control_group?.percent ?? 10),
    max_recipients: String(c.limits?.max_recipients ?? ""),
    budget_points: String(c.limits?.budget?.points ?? ""),
    budget_amount: String(c.limits?.budget?.amount ?? ""),
    reentry_days: String(c.limits?.reentry_days ?? ""),
  });
  const [actions, setActions] = useState(c.actions || [{ type: "message", template_id: "" }]);
  const [error, setError] = useState(null);
  const set = (name) => (e) => {
    const t = e.currentTarget;
    setF((v) => ({ ...v, [name]: t.type === "checkbox" ? t.checked : t.value }));
  };
  const setAction = (i, name, asNumber) => (e) => {
    const raw = e.currentTarget.value;
    setActions((as) => as.map((a, j) => (j === i ? { ...a, [name]: asNumber ? num(raw) : raw } : a)));
  };

  function body() {
    const trigger = { type: f.trigger };
    if (f.trigger === "schedule" && f.cron) Object.assign(trigger, { cron: f.cron, timezone: f.timezone || undefined });
    else if (f.trigger === "schedule") trigger.at = f.at;
    if (f.trigger === "event") trigger.event = f.event;
    if (f.trigger === "birthday") trigger.days_before = num(f.days);
    if (f.trigger === "inactivity") trigger.days = num(f.days);
    const limits = {};
    if (f.max_recipients) limits.max_recipients = num(f.max_recipients);
    if (f.budget_points || f.budget_amount) {
      limits.budget = {};
      if (f.budget_points) limits.budget.points = num(f.budget_points);
      if (f.budget_amount) limits.budget.amount = f.budget_amount;
    }
    if (f.reentry_days) limits.reentry_days = num(f.reentry_days);
    return {
      ...strip(c),
      campaign_id: undefined,
      name: f.name,
      status: f.status,
      trigger,
      audience: { segment_id: f.segment_id, members_only: f.members_only },
      actions,
      control_group: { percent: num(f.control) ?? 0 },
      limits,
    };
  }
  async function save(event) {
    event.preventDefault();
    setError(null);
    try {
      const payload = body();
      delete payload.campaign_id;
      await put(`/v1/admin/campaigns/${encodeURIComponent(f.campaign_id.trim())}`, payload);
      navigate(`#/campaigns/${encodeURIComponent(f.campaign_id.trim())}/runs`);
    } catch (e) {
      setError(e);
    }
  }
  const errors = error instanceof Problem ? error.fields() : {};
  const shown = ["campaign_id", "name", "status", "trigger", "audience", "actions", "control_group", "limits"];
  const choose = (items, key, label) => [{ value: "", label: `Choose ${label}` }, ...items.map((i) => ({ value: i[key], label: i.name ? `${i.name} (${i[key]})` : i[key] }))];
  return html`<${Page} title=${campaign ? `Campaign ${c.campaign_id}` : "New campaign"}>
    <form class="editor" onSubmit=${save} novalidate>
      <${ProblemBanner} error=${error} shown=${shown} />
      <div class="row">
        <${Field} label="Id (campaign_id)" name="campaign_id" type="text" required readOnly=${Boolean(campaign)} value=${f.campaign_id} onInput=${set("campaign_id")} errors=${errors} />
        <${Field} label="Name" name="name" type="text" required value=${f.name} onInput=${set("name")} errors=${errors} />
        <${Field} label="Status" name="status" type="select" options=${["draft", "active", "paused", "ended"]} value=${f.status} onChange=${set("status")} errors=${errors} />
      </div>
      <fieldset><legend>Trigger</legend>
        <div class="row">
          <${Field} label="When" name="trigger" type="select" options=${TRIGGERS} value=${f.trigger} onChange=${set("trigger")} errors=${errors} />
          ${f.trigger === "schedule"
            ? html`<${Field} label="At (once)" name="trigger.at" type="text" value=${f.at} onInput=${set("at")} hint="2026-12-24T09:00:00Z" errors=${errors} />
                <${Field} label="Or cron" name="trigger.cron" type="text" value=${f.cron} onInput=${set("cron")} hint="cron(0 9 ? * MON *)" errors=${errors} />
                <${Field} label="Time zone" name="trigger.timezone" type="text" value=${f.timezone} onInput=${set("timezone")} hint="Europe/Amsterdam" errors=${errors} />`
            : null}
          ${f.trigger === "event" ? html`<${Field} label="Event" name="trigger.event" type="text" value=${f.event} onInput=${set("event")} hint="CustomerEnrolled, TierChanged, SegmentEntered…" errors=${errors} />` : null}
          ${f.trigger === "birthday" || f.trigger === "inactivity"
            ? html`<${Field} label=${f.trigger === "birthday" ? "Days before" : "Days inactive"} name=${f.trigger === "birthday" ? "trigger.days_before" : "trigger.days"} type="number" min="0" value=${f.days} onInput=${set("days")} errors=${errors} />`
            : null}
        </div>
      </fieldset>
      <fieldset><legend>Audience</legend>
        <div class="row">
          <${Field} label="Segment" name="audience.segment_id" type="select" options=${choose(segments, "segment_id", "a segment")} value=${f.segment_id} onChange=${set("segment_id")} errors=${errors} />
          <${Field} label="Members only" name="audience.members_only" type="checkbox" checked=${f.members_only} onChange=${set("members_only")} errors=${errors} />
          <${Field} label="Control group (%)" name="control_group.percent" type="number" min="0" max="50" value=${f.control} onInput=${set("control")} errors=${errors} />
        </div>
      </fieldset>
      <fieldset><legend>Actions, in order</legend>
        <ol class="conditions">
          ${actions.map((a, i) => html`<li key=${i}><div class=${`condition${errorFor(errors, `actions.${i}`) ? " invalid" : ""}`}><div class="row">
            <${Field} label=${`Action ${i + 1}`} name=${`action-${i + 1}`} type="select" options=${ACTIONS} value=${a.type}
              onChange=${(e) => { const type = e.currentTarget.value; setActions((as) => as.map((x, j) => (j === i ? { type } : x))); }} />
            ${a.type === "coupon"
              ? html`<${Field} label="Offer" name=${`offer-${i + 1}`} type="select" options=${choose(offers, "offer_id", "an offer")} value=${a.offer_id || ""} onChange=${setAction(i, "offer_id")} />
                  <${Field} label="Valid days" name=${`valid-days-${i + 1}`} type="number" min="1" value=${a.valid_days ?? ""} onInput=${setAction(i, "valid_days", true)} />`
              : null}
            ${a.type === "points" ? html`<${Field} label="Points" name=${`points-${i + 1}`} type="number" min="1" value=${a.points ?? ""} onInput=${setAction(i, "points", true)} />` : null}
            ${a.type === "promo_cash"
              ? html`<${Field} label="Amount" name=${`amount-${i + 1}`} type="text" value=${a.amount || ""} onInput=${setAction(i, "amount")} />
                  <${Field} label="Expires after days" name=${`expires-${i + 1}`} type="number" min="1" value=${a.expires_days ?? ""} onInput=${setAction(i, "expires_days", true)} />`
              : null}
            ${a.type === "message" ? html`<${Field} label="Template" name=${`template-${i + 1}`} type="select" options=${choose(templates, "template_id", "a template")} value=${a.template_id || ""} onChange=${setAction(i, "template_id")} />` : null}
            <div class="field submit"><button type="button" class="small danger" onClick=${() => setActions((as) => as.filter((_, j) => j !== i))} aria-label=${`Remove action ${i + 1}`}>Remove</button></div>
          </div>${errorFor(errors, `actions.${i}`) ? html`<p class="field-error">${errorFor(errors, `actions.${i}`)}</p>` : null}</div></li>`)}
        </ol>
        <button type="button" class="secondary" onClick=${() => setActions((as) => [...as, { type: "points", points: 100 }])}>Add an action</button>
        ${errorFor(errors, "actions") && !actions.length ? html`<p class="field-error">${errorFor(errors, "actions")}</p>` : null}
      </fieldset>
      <fieldset><legend>Limits</legend>
        <div class="row">
          <${Field} label="At most recipients" name="limits.max_recipients" type="number" min="1" value=${f.max_recipients} onInput=${set("max_recipients")} errors=${errors} />
          <${Field} label="Points budget" name="limits.budget.points" type="number" min="0" value=${f.budget_points} onInput=${set("budget_points")} errors=${errors} />
          <${Field} label="Amount budget" name="limits.budget.amount" type="text" value=${f.budget_amount} onInput=${set("budget_amount")} errors=${errors} />
          <${Field} label="Re-entry after days" name="limits.reentry_days" type="number" min="0" value=${f.reentry_days} onInput=${set("reentry_days")} errors=${errors} />
        </div>
      </fieldset>
      <div class="actions">
        <button type="submit">Save campaign</button>
        <a class="button secondary" href="#/campaigns">Back to campaigns</a>
      </div>
    </form>
  </${Page}>`;
}

const FINISHED = ["succeeded", "failed", "cancelled"];

function CampaignRuns({ campaignId }) {
  const path = `/v1/admin/campaigns/${encodeURIComponent(campaignId)}`;
  const [dry, setDry] = useState(null);
  const [run, setRun] = useState(null);
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);

  async function dryRun() {
    setError(null);
    setBusy(true);
    try {
      setDry(await post(`${path}/dry-run`));
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  }
  async function start() {
    setError(null);
    try {
      const started = await post(`${path}/runs`);
      setRun({ ...started, counts: null });
    } catch (e) {
      setError(e);
    }
  }
  async function cancel() {
    try {
      await post(`${path}/runs/${encodeURIComponent(run.run_id)}/cancel`);
    } catch (e) {
      setError(e);
    }
  }
  // While a run runs, its progress every second; it stops polling once the run has finished.
  useEffect(() => {
    if (!run || FINISHED.includes(run.status)) return undefined;
    const timer = setTimeout(async () => {
      try {
        setRun(await get(`${path}/runs/${encodeURIComponent(run.run_id)}`).then((r) => ({ run_id: run.run_id, ...r })));
      } catch (e) {
        setError(e);
      }
    }, 1000);
    return () => clearTimeout(timer);
  }, [run]);

  const counts = run?.counts || {};
  const done = (counts.actioned || 0) + (counts.failed || 0) + Object.values(counts.skipped || {}).reduce((a, b) => a + b, 0);
  const total = Math.max((counts.audience || 0) - (counts.control || 0), 0);
  return html`<${Page} title=${`Campaign ${campaignId}: dry run and runs`} actions=${html`<a class="button secondary" href=${`#/campaigns/${encodeURIComponent(campaignId)}`}>Edit</a>`}>
    <${ProblemBanner} error=${error} />
    <div class="actions">
      <button type="button" onClick=${dryRun} disabled=${busy}>Dry run</button>
      <button type="button" onClick=${start} disabled=${run && !FINISHED.includes(run.status)}>Start a run now</button>
    </div>
    ${busy ? html`<p class="loading" role="status">Counting the audience…</p>` : null}
    ${dry
      ? html`<section aria-labelledby="dry-h"><h2 id="dry-h">Dry run (nothing was sent or given)</h2>
          <dl class="facts">
            <dt>Audience</dt><dd>${dry.audience}</dd>
            <dt>Control group</dt><dd>${dry.control}</dd>
            <dt>Eligible</dt><dd>${dry.eligible}</dd>
            ${Object.entries(dry.excluded || {}).map(([k, v]) => html`<dt>Excluded: ${k.replace(/_/g, " ")}</dt><dd>${v}</dd>`)}
            <dt>Cost in points</dt><dd>${fmt(dry.cost?.points)}</dd>
            <dt>Cost in money</dt><dd>${fmt(dry.cost?.amount)}</dd>
            <dt>Coupons</dt><dd>${fmt(dry.cost?.coupons)}</dd>
            <dt>Messages</dt><dd>${Object.entries(dry.cost?.messages || {}).map(([k, v]) => `${k} ${v}`).join(", ") || "—"}</dd>
          </dl></section>`
      : null}
    ${run
      ? html`<section aria-labelledby="run-h"><h2 id="run-h">Run ${run.run_id}</h2>
          <p role="status" aria-live="polite">Status: <strong class="run-status">${run.status}</strong>
            ${run.counts ? ` — ${done} of ${total} handled` : ""}</p>
          <label for="run-progress">Progress</label>
          <progress id="run-progress" max=${total || 1} value=${FINISHED.includes(run.status) ? total || 1 : done}></progress>
          ${run.counts
            ? html`<dl class="facts">
                <dt>Audience</dt><dd>${counts.audience}</dd><dt>Control</dt><dd>${counts.control}</dd>
                <dt>Actioned</dt><dd>${counts.actioned}</dd><dt>Failed</dt><dd>${counts.failed}</dd>
                ${Object.entries(counts.skipped || {}).map(([k, v]) => html`<dt>Skipped: ${k.replace(/_/g, " ")}</dt><dd>${v}</dd>`)}
                <dt>Started</dt><dd>${when(run.started_at)}</dd><dt>Finished</dt><dd>${when(run.finished_at)}</dd>
              </dl>`
            : null}
          ${!FINISHED.includes(run.status) ? html`<button type="button" class="danger" onClick=${cancel}>Cancel the run</button>` : null}
        </section>`
      : null}
    <section aria-labelledby="uplift-h"><h2 id="uplift-h">Uplift over 30 days</h2><${Uplift} campaignId=${campaignId} /></section>
  </${Page}>`;
}

export function Uplift({ campaignId }) {
  const { data, error, loading } = useLoad(
    () => get(`/v1/admin/reports/campaigns/${encodeURIComponent(campaignId)}`, { window_days: 30 }),
    [campaignId],
  );
  return html`<${ProblemBanner} error=${error} />
    ${loading && !data ? html`<${Loading} what="Asking the lake" />` : null}
    ${data ? html`<${Table} caption="Treatment and control" rows=${["treatment", "control"].map((g) => ({ group: g, ...(data[g] || {}) }))}
        columns=${[
          { key: "group", label: "Group" },
          { key: "customers", label: "Customers", num: true },
          { key: "converted", label: "Converted", num: true },
          { key: "conversion_rate", label: "Conversion rate", num: true },
          { key: "revenue_per_customer", label: "Revenue per customer", num: true },
        ]} />
      <p>Uplift: ${fmt(data.uplift?.absolute)} (relative ${fmt(data.uplift?.relative)}), 95% interval ${fmt(data.uplift?.ci_low ?? data.uplift?.interval?.[0])} to ${fmt(data.uplift?.ci_high ?? data.uplift?.interval?.[1])}.</p>` : null}`;
}
