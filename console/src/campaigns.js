// Campaigns (spec "Campaigns"): the list with status changes; a form for trigger, audience, ordered
// actions, control group and limits, the API's field errors next to their fields; a campaign's page
// with its dry run, its runs (start, watch the progress, cancel, retry), its report (treatment
// against control, uplift with its interval, cost) as a chart, and a backtest over the lake.
import { useEffect, useState } from "preact/hooks";
import { Problem, get, post, put } from "./api.js";
import { COLOURS, ChartBox } from "./charts.js";
import { Csv, Field, Loading, Page, ProblemBanner, Table, errorFor, fmt, html, useLoad, when } from "./ui.js";

const TRIGGERS = [
  { value: "manual", label: "Manual (a marketer starts each run)" },
  { value: "schedule", label: "Schedule (once or recurring)" },
  { value: "event", label: "Event (an activity of one customer)" },
  { value: "birthday", label: "Birthday" },
  { value: "inactivity", label: "Inactivity (win-back)" },
];
// loyalty.domain.campaigns.TRIGGER_EVENTS
const EVENTS = [
  "CustomerEnrolled",
  "TierChanged",
  "SegmentEntered",
  "SegmentExited",
  "CustomerEventRecorded",
  "TransactionRecorded",
  "ChallengeCompleted",
  "BadgeEarned",
  "PointsEarned",
];
const ACTIONS = [
  { value: "coupon", label: "Personal coupon" },
  { value: "points", label: "Points" },
  { value: "promo_cash", label: "Promotional cash" },
  { value: "message", label: "Message" },
];
const NEW_ACTION = { coupon: { valid_days: 30 }, points: { points: 100 }, promo_cash: { expires_days: 90 }, message: {} };
const STATUSES = ["draft", "active", "paused", "ended"];
// Where a status may go from the list and the campaign's page (a PUT of the whole definition).
const MOVES = {
  draft: [["active", "Activate"]],
  active: [["paused", "Pause"], ["ended", "End"]],
  paused: [["active", "Activate"], ["ended", "End"]],
  ended: [],
};
// What a PUT carries (CampaignDefinition); the rest of a stored campaign is the API's.
const DEFINITION = ["name", "description", "trigger", "audience", "actions", "control_group", "limits", "status"];
const FINISHED = ["succeeded", "failed", "cancelled"];

const num = (v) => (v === "" || v === undefined || v === null ? undefined : Number(v));
const words = (s) => String(s).replace(/_/g, " ");
const base = (id) => `/v1/admin/campaigns/${encodeURIComponent(id)}`;
const definition = (c) => Object.fromEntries(DEFINITION.filter((k) => c[k] !== undefined).map((k) => [k, c[k]]));

// The API names a field inside a tagged union with its tag (`trigger.schedule.cron`,
// `actions.0.coupon.offer_id`): the form's fields are named without it.
const TAGS = new Set([...TRIGGERS.map((t) => t.value), ...ACTIONS.map((a) => a.value)]);
export function campaignErrors(error) {
  if (!(error instanceof Problem)) return {};
  const out = {};
  for (const [at, msg] of Object.entries(error.fields())) {
    const parts = at.split(".");
    const kept = parts.filter((p, i) => !(TAGS.has(p) && (parts[i - 1] === "trigger" || /^\d+$/.test(parts[i - 1] || "") && parts[i - 2] === "actions")));
    const name = kept.join(".");
    out[name] = out[name] ? `${out[name]}; ${msg}` : msg;
  }
  return out;
}
// Only the error named exactly `name` (a select whose sub-fields show their own).
const only = (errors, name) => (errors[name] ? { [name]: errors[name] } : {});

export function Campaigns({ navigate, arg, sub }) {
  if (arg === "new") return html`<${CampaignEditor} campaignId=${null} navigate=${navigate} />`;
  if (arg && sub === "edit") return html`<${CampaignEditor} campaignId=${arg} navigate=${navigate} />`;
  if (arg) return html`<${CampaignPage} key=${arg} campaignId=${arg} />`;
  return html`<${CampaignList} />`;
}

export function describeTrigger(t) {
  if (!t) return "—";
  if (t.type === "schedule") return t.cron ? `${t.cron} (${t.timezone || "UTC"})` : `once at ${when(t.at)}`;
  if (t.type === "event") {
    const where = Object.entries(t.where || {}).map(([k, v]) => `${k} = ${v}`).join(", ");
    return `on ${t.event}${where ? ` where ${where}` : ""}`;
  }
  if (t.type === "birthday") return `birthday, ${t.days_before ?? 0} days before`;
  if (t.type === "inactivity") return `${t.days} days without a purchase`;
  return "manual";
}

function describeAction(a) {
  if (a.type === "coupon") return `coupon of ${a.offer_id} (${a.valid_days ?? 30} days)`;
  if (a.type === "points") return `${a.points} points`;
  if (a.type === "promo_cash") return `${a.amount} promotional cash (${a.expires_days ?? 90} days)`;
  return `message ${a.template_id}`;
}

// A status change is a PUT of the whole definition with the new status.
async function move(campaign, status) {
  const current = await get(base(campaign.campaign_id));
  return put(base(campaign.campaign_id), { ...definition(current), status });
}

function StatusButtons({ campaign, onMoved, onError }) {
  return (MOVES[campaign.status] || []).map(
    ([status, label]) => html`<button type="button" class=${status === "ended" ? "small danger" : "small secondary"}
      aria-label=${`${label} ${campaign.campaign_id}`}
      onClick=${() => move(campaign, status).then(onMoved, onError)}>${label}</button>`,
  );
}

function CampaignList() {
  const { data, error, loading, reload } = useLoad(() => get("/v1/admin/campaigns", { limit: 200 }), []);
  const [actionError, setActionError] = useState(null);
  const moved = () => {
    setActionError(null);
    reload();
  };
  return html`<${Page} title="Campaigns" actions=${html`<a class="button" href="#/campaigns/new">New campaign</a>`}>
    <${ProblemBanner} error=${error || actionError} />
    ${loading && !data ? html`<${Loading} />` : null}
    ${data
      ? html`<${Table} caption="Campaigns" rows=${data.items} rowKey=${(c) => c.campaign_id} empty="No campaigns yet."
          columns=${[
            { key: "campaign_id", label: "Id", render: (c) => html`<a href=${`#/campaigns/${encodeURIComponent(c.campaign_id)}`}>${c.campaign_id}</a>` },
            { key: "name", label: "Name" },
            { key: "status", label: "Status", render: (c) => html`<span class=${`tag status-${c.status}`}>${c.status}</span>` },
            { key: "trigger", label: "Trigger", render: (c) => describeTrigger(c.trigger) },
            { key: "audience", label: "Audience", render: (c) => `${c.audience?.segment_id || "everyone"}${c.audience?.members_only ? ", members only" : ""}` },
            {
              key: "_",
              label: "Actions",
              render: (c) => html`<span class="row-actions">
                <a class="button small secondary" href=${`#/campaigns/${encodeURIComponent(c.campaign_id)}/edit`} aria-label=${`Edit ${c.campaign_id}`}>Edit</a>
                <${StatusButtons} campaign=${c} onMoved=${moved} onError=${setActionError} />
              </span>`,
            },
          ]} />`
      : null}
  </${Page}>`;
}

function CampaignEditor({ campaignId, navigate }) {
  const existing = useLoad(() => (campaignId ? get(base(campaignId)) : Promise.resolve(null)), [campaignId]);
  const segments = useLoad(() => get("/v1/admin/segments", { limit: 200 }).catch(() => ({ items: [] })), []);
  const offers = useLoad(() => get("/v1/admin/offers", { limit: 200 }), []);
  const templates = useLoad(() => get("/v1/admin/templates", { limit: 200 }), []);
  if (existing.loading) return html`<${Page} title="Campaign"><${Loading} /></${Page}>`;
  if (existing.error) return html`<${Page} title="Campaign"><${ProblemBanner} error=${existing.error} /></${Page}>`;
  return html`<${CampaignForm} campaign=${existing.data} navigate=${navigate}
    segments=${segments.data?.items || []} offers=${offers.data?.items || []} templates=${templates.data?.items || []} />`;
}

function formOf(c) {
  const t = c.trigger || { type: "manual" };
  return {
    campaign_id: c.campaign_id || "",
    name: c.name || "",
    description: c.description || "",
    status: c.status || "draft",
    trigger: t.type,
    once: t.type !== "schedule" || !t.cron,
    at: t.at || "",
    cron: t.cron || "",
    timezone: t.timezone || "UTC",
    event: t.event || "CustomerEnrolled",
    days_before: String(t.days_before ?? 0),
    days: String(t.days ?? 90),
    segment_id: c.audience?.segment_id || "",
    members_only: Boolean(c.audience?.members_only),
    control: String(c.control_group?.percent ?? 10),
    max_recipients: String(c.limits?.max_recipients ?? ""),
    budget_points: String(c.limits?.budget?.points ?? ""),
    budget_amount: String(c.limits?.budget?.amount ?? ""),
    reentry_days: String(c.limits?.reentry_days ?? ""),
  };
}

function bodyOf(f, actions, where) {
  const trigger = { type: f.trigger };
  if (f.trigger === "schedule" && f.once) trigger.at = f.at.trim() || null;
  if (f.trigger === "schedule" && !f.once) Object.assign(trigger, { cron: f.cron.trim(), timezone: f.timezone.trim() || "UTC" });
  if (f.trigger === "event") {
    trigger.event = f.event;
    trigger.where = Object.fromEntries(where.filter(([k]) => k.trim()).map(([k, v]) => [k.trim(), v]));
  }
  if (f.trigger === "birthday") trigger.days_before = num(f.days_before) ?? 0;
  if (f.trigger === "inactivity") trigger.days = num(f.days);
  const limits = {};
  if (f.max_recipients) limits.max_recipients = num(f.max_recipients);
  if (f.budget_points || f.budget_amount) {
    limits.budget = {};
    if (f.budget_points) limits.budget.points = num(f.budget_points);
    if (f.budget_amount) limits.budget.amount = f.budget_amount.trim();
  }
  if (f.reentry_days) limits.reentry_days = num(f.reentry_days);
  return {
    name: f.name,
    description: f.description,
    status: f.status,
    trigger,
    audience: { segment_id: f.segment_id || null, members_only: f.members_only },
    actions,
    control_group: { percent: num(f.control) ?? 0 },
    limits,
  };
}

function CampaignForm({ campaign, navigate, segments, offers, templates }) {
  const c = campaign || {};
  const [f, setF] = useState(() => formOf(c));
  const [actions, setActions] = useState(c.actions || [{ type: "points", points: 100 }]);
  const [where, setWhere] = useState(Object.entries(c.trigger?.where || {}).map(([k, v]) => [k, String(v)]));
  const [error, setError] = useState(null);
  const [saving, setSaving] = useState(false);
  const set = (name) => (e) => {
    const t = e.currentTarget;
    setF((v) => ({ ...v, [name]: t.type === "checkbox" ? t.checked : t.value }));
  };
  const setAction = (i, name, asNumber) => (e) => {
    const raw = e.currentTarget.value;
    setActions((as) => as.map((a, j) => (j === i ? { ...a, [name]: asNumber ? num(raw) : raw } : a)));
  };
  const moveAction = (i, by) =>
    setActions((as) => {
      const out = [...as];
      [out[i], out[i + by]] = [out[i + by], out[i]];
      return out;
    });

  async function save(event) {
    event.preventDefault();
    setError(null);
    setSaving(true);
    const id = f.campaign_id.trim();
    try {
      if (!id) throw new Problem(422, { title: "Invalid request", detail: "a campaign needs an id", errors: [{ loc: ["path", "campaign_id"], msg: "required" }] });
      await put(base(id), bodyOf(f, actions, where));
      navigate(`#/campaigns/${encodeURIComponent(id)}`);
    } catch (e) {
      setError(e);
    } finally {
      setSaving(false);
    }
  }
  const errors = campaignErrors(error);
  const shown = ["campaign_id", "name", "description", "status", "trigger", "audience", "actions", "control_group", "limits"];
  const choose = (items, key, label, none) => [{ value: "", label: none || `Choose ${label}` }, ...items.map((i) => ({ value: i[key], label: i.name ? `${i.name} (${i[key]})` : i[key] }))];
  const templateOptions = [{ value: "", label: "Choose a template" }, ...templates.map((t) => ({ value: t.template_id, label: `${t.template_id} (${t.channel})` }))];
  return html`<${Page} title=${campaign ? `Edit campaign ${c.campaign_id}` : "New campaign"}>
    <form class="editor" onSubmit=${save} novalidate>
      <${ProblemBanner} error=${error} shown=${shown} />
      <div class="row">
        <${Field} label="Id (campaign_id)" name="campaign_id" type="text" required readOnly=${Boolean(campaign)} value=${f.campaign_id} onInput=${set("campaign_id")} errors=${errors} />
        <${Field} label="Name" name="name" type="text" required value=${f.name} onInput=${set("name")} errors=${errors} />
        <${Field} label="Status" name="status" type="select" options=${STATUSES} value=${f.status} onChange=${set("status")} errors=${errors} />
      </div>
      <${Field} label="Description" name="description" type="text" value=${f.description} onInput=${set("description")} errors=${errors} />
      <fieldset><legend>Trigger</legend>
        <div class="row">
          <${Field} label="When" name="trigger" type="select" options=${TRIGGERS} value=${f.trigger} onChange=${set("trigger")} errors=${only(errors, "trigger")} />
          ${f.trigger === "schedule"
            ? html`<${Field} label="Recurring" name="trigger.recurring" type="checkbox" checked=${!f.once}
                onChange=${(e) => { const on = e.currentTarget.checked; setF((v) => ({ ...v, once: !on })); }} />
              ${f.once
                ? html`<${Field} label="At (once)" name="trigger.at" type="text" value=${f.at} onInput=${set("at")} hint="UTC, e.g. 2026-12-24T09:00:00Z" errors=${errors} />`
                : html`<${Field} label="Cron" name="trigger.cron" type="text" value=${f.cron} onInput=${set("cron")} hint="AWS cron: cron(0 9 ? * MON *)" errors=${errors} />
                    <${Field} label="Time zone" name="trigger.timezone" type="text" list="time-zones" value=${f.timezone} onInput=${set("timezone")} hint="Europe/Amsterdam" errors=${errors} />
                    <datalist id="time-zones">${(Intl.supportedValuesOf?.("timeZone") || ["UTC"]).map((z) => html`<option value=${z} />`)}</datalist>`}`
            : null}
          ${f.trigger === "event" ? html`<${Field} label="Event" name="trigger.event" type="select" options=${EVENTS} value=${f.event} onChange=${set("event")} errors=${errors} />` : null}
          ${f.trigger === "birthday" ? html`<${Field} label="Days before the birthday" name="trigger.days_before" type="number" min="0" max="60" value=${f.days_before} onInput=${set("days_before")} errors=${errors} />` : null}
          ${f.trigger === "inactivity" ? html`<${Field} label="Days without a purchase" name="trigger.days" type="number" min="1" value=${f.days} onInput=${set("days")} errors=${errors} />` : null}
        </div>
        ${f.trigger === "event"
          ? html`<div class=${`where${errorFor(errors, "trigger.where") ? " invalid" : ""}`}>
              <p class="hint">Only events whose detail has these values (a customer event's <code>type</code>, a segment's <code>segment_id</code>, a tier change's <code>to</code>; <code>properties.name</code> for a customer event's properties).</p>
              ${where.map(([k, v], i) => html`<div class="row" key=${i}>
                <${Field} label=${`Detail field ${i + 1}`} name=${`where-key-${i + 1}`} type="text" value=${k}
                  onInput=${(e) => { const t = e.currentTarget.value; setWhere((w) => w.map((p, j) => (j === i ? [t, p[1]] : p))); }} />
                <${Field} label=${`Equals ${i + 1}`} name=${`where-value-${i + 1}`} type="text" value=${v}
                  onInput=${(e) => { const t = e.currentTarget.value; setWhere((w) => w.map((p, j) => (j === i ? [p[0], t] : p))); }} />
                <div class="field submit"><button type="button" class="small danger" aria-label=${`Remove condition ${i + 1}`} onClick=${() => setWhere((w) => w.filter((_, j) => j !== i))}>Remove</button></div>
              </div>`)}
              <button type="button" class="small secondary" onClick=${() => setWhere((w) => [...w, ["", ""]])}>Add a detail condition</button>
              ${errorFor(errors, "trigger.where") ? html`<p class="field-error">${errorFor(errors, "trigger.where")}</p>` : null}
            </div>`
          : null}
      </fieldset>
      <fieldset><legend>Audience</legend>
        <div class="row">
          <${Field} label="Segment" name="audience.segment_id" type="select" options=${choose(segments, "segment_id", "a segment", "Everyone (no segment)")} value=${f.segment_id} onChange=${set("segment_id")} errors=${errors} />
          <${Field} label="Members only" name="audience.members_only" type="checkbox" checked=${f.members_only} onChange=${set("members_only")} errors=${errors} />
          <${Field} label="Control group (%)" name="control_group.percent" type="number" min="0" max="90" value=${f.control} onInput=${set("control")} errors=${errors}
            hint="held out at random, stable per customer: they get nothing and are the report's baseline" />
        </div>
      </fieldset>
      <fieldset><legend>Actions, in order</legend>
        <p class="hint">A message can use what the actions before it gave (<code>{{ coupon.code }}</code>).</p>
        <ol class="conditions">
          ${actions.map((a, i) => {
            const at = `actions.${i}`;
            const own = only(errors, at);
            return html`<li key=${i}><div class=${`condition${errorFor(errors, at) ? " invalid" : ""}`}><div class="row">
            <${Field} label=${`Action ${i + 1}`} name=${`${at}.type`} type="select" options=${ACTIONS} value=${a.type} errors=${errors}
              onChange=${(e) => { const type = e.currentTarget.value; setActions((as) => as.map((x, j) => (j === i ? { type, ...NEW_ACTION[type] } : x))); }} />
            ${a.type === "coupon"
              ? html`<${Field} label="Offer" name=${`${at}.offer_id`} type="select" options=${choose(offers, "offer_id", "an offer")} value=${a.offer_id || ""} onChange=${setAction(i, "offer_id")} errors=${errors} />
                  <${Field} label="Valid days" name=${`${at}.valid_days`} type="number" min="1" value=${a.valid_days ?? ""} onInput=${setAction(i, "valid_days", true)} errors=${errors} />`
              : null}
            ${a.type === "points" ? html`<${Field} label="Points" name=${`${at}.points`} type="number" min="1" value=${a.points ?? ""} onInput=${setAction(i, "points", true)} errors=${errors} />` : null}
            ${a.type === "promo_cash"
              ? html`<${Field} label="Amount" name=${`${at}.amount`} type="text" inputmode="decimal" value=${a.amount || ""} onInput=${setAction(i, "amount")} errors=${errors} />
                  <${Field} label="Expires after days" name=${`${at}.expires_days`} type="number" min="1" value=${a.expires_days ?? ""} onInput=${setAction(i, "expires_days", true)} errors=${errors} />`
              : null}
            ${a.type === "message" ? html`<${Field} label="Template" name=${`${at}.template_id`} type="select" options=${templateOptions} value=${a.template_id || ""} onChange=${setAction(i, "template_id")} errors=${errors} />` : null}
            <div class="field submit"><span class="row-actions">
              <button type="button" class="small secondary" disabled=${i === 0} onClick=${() => moveAction(i, -1)} aria-label=${`Move action ${i + 1} up`}>Up</button>
              <button type="button" class="small secondary" disabled=${i === actions.length - 1} onClick=${() => moveAction(i, 1)} aria-label=${`Move action ${i + 1} down`}>Down</button>
              <button type="button" class="small danger" onClick=${() => setActions((as) => as.filter((_, j) => j !== i))} aria-label=${`Remove action ${i + 1}`}>Remove</button>
            </span></div>
          </div>${own[at] ? html`<p class="field-error">${own[at]}</p>` : null}</div></li>`;
          })}
        </ol>
        <button type="button" class="secondary" onClick=${() => setActions((as) => [...as, { type: "message" }])}>Add an action</button>
        ${errors.actions ? html`<p class="field-error">${errors.actions}</p>` : null}
      </fieldset>
      <fieldset><legend>Limits</legend>
        <div class="row">
          <${Field} label="At most recipients" name="limits.max_recipients" type="number" min="1" value=${f.max_recipients} onInput=${set("max_recipients")} errors=${errors} />
          <${Field} label="Points budget" name="limits.budget.points" type="number" min="1" value=${f.budget_points} onInput=${set("budget_points")} errors=${errors} />
          <${Field} label="Money budget" name="limits.budget.amount" type="text" inputmode="decimal" value=${f.budget_amount} onInput=${set("budget_amount")} errors=${errors} />
          <${Field} label="Re-entry after days" name="limits.reentry_days" type="number" min="1" value=${f.reentry_days} onInput=${set("reentry_days")} errors=${errors} />
        </div>
      </fieldset>
      <div class="actions">
        <button type="submit" disabled=${saving}>Save campaign</button>
        <a class="button secondary" href=${campaign ? `#/campaigns/${encodeURIComponent(c.campaign_id)}` : "#/campaigns"}>Cancel</a>
      </div>
    </form>
  </${Page}>`;
}

// ---- a campaign's page: what it is, its dry run, runs, report and backtest ---------------------

function CampaignPage({ campaignId }) {
  const { data: c, error, loading, reload } = useLoad(() => get(base(campaignId)), [campaignId]);
  const [actionError, setActionError] = useState(null);
  if (loading && !c) return html`<${Page} title=${`Campaign ${campaignId}`}><${Loading} /></${Page}>`;
  if (!c) return html`<${Page} title=${`Campaign ${campaignId}`}><${ProblemBanner} error=${error} /></${Page}>`;
  const runnable = ["manual", "schedule"].includes(c.trigger?.type);
  return html`<${Page} title=${c.name || campaignId} actions=${html`<a class="button secondary" href=${`#/campaigns/${encodeURIComponent(campaignId)}/edit`}>Edit</a>
      <${StatusButtons} campaign=${c} onMoved=${() => { setActionError(null); reload(); }} onError=${setActionError} />`}>
    <${ProblemBanner} error=${actionError} />
    <dl class="facts" aria-label="Definition">
      <dt>Id</dt><dd>${c.campaign_id}</dd>
      <dt>Status</dt><dd><span class=${`tag status-${c.status}`}>${c.status}</span></dd>
      <dt>Trigger</dt><dd>${describeTrigger(c.trigger)}</dd>
      <dt>Audience</dt><dd>${c.audience?.segment_id || "everyone"}${c.audience?.members_only ? ", members only" : ""}</dd>
      <dt>Actions</dt><dd>${(c.actions || []).map(describeAction).join(", then ")}</dd>
      <dt>Control group</dt><dd>${c.control_group?.percent ?? 0}%</dd>
      <dt>Limits</dt><dd>${describeLimits(c.limits)}</dd>
    </dl>
    <section aria-labelledby="dry-h"><h2 id="dry-h">Dry run</h2><${DryRun} campaignId=${campaignId} /></section>
    <section aria-labelledby="runs-h"><h2 id="runs-h">Runs</h2>
      ${runnable
        ? html`<${Runs} campaignId=${campaignId} active=${c.status === "active"} />`
        : html`<p class="note">A ${c.trigger?.type} campaign acts on each customer's occasion as it happens; it has no runs to start.</p>`}
    </section>
    <section aria-labelledby="report-h"><h2 id="report-h">Report</h2><${CampaignReport} campaignId=${campaignId} /></section>
    <section aria-labelledby="backtest-h"><h2 id="backtest-h">Backtest</h2><${Backtest} campaignId=${campaignId} /></section>
  </${Page}>`;
}

function describeLimits(l) {
  if (!l) return "none";
  const parts = [];
  if (l.max_recipients) parts.push(`at most ${l.max_recipients} recipients`);
  if (l.budget?.points) parts.push(`${l.budget.points} points`);
  if (l.budget?.amount) parts.push(`${l.budget.amount} in money`);
  if (l.reentry_days) parts.push(`re-entry after ${l.reentry_days} days`);
  return parts.join(", ") || "none";
}

function Cards({ label, items }) {
  return html`<div class="cards" role="group" aria-label=${label}>
    ${items.map(([name, value]) => html`<div class="card"><span class="card-label">${name}</span><span class="card-value">${fmt(value)}</span></div>`)}
  </div>`;
}

function messages(m) {
  return Object.entries(m || {}).filter(([, n]) => n).map(([k, n]) => `${k} ${n}`).join(", ") || "none";
}

function DryRun({ campaignId }) {
  const [dry, setDry] = useState(null);
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  async function dryRun() {
    setError(null);
    setBusy(true);
    try {
      setDry(await post(`${base(campaignId)}/dry-run`));
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  }
  const excluded = Object.entries(dry?.excluded || {}).filter(([, n]) => n);
  return html`<p class="hint">Who the campaign would reach now and what it would cost. Nothing is sent or given.</p>
    <div class="actions"><button type="button" onClick=${dryRun} disabled=${busy}>Dry run</button></div>
    <${ProblemBanner} error=${error} />
    ${busy ? html`<p class="loading" role="status">Counting the audience…</p>` : null}
    ${dry
      ? html`<div class="dry-run" aria-label="Dry run result" role="region">
          <${Cards} label="Who" items=${[["Audience", dry.audience], ["Control group", dry.control], ["Eligible", dry.eligible]]} />
          <div class="grid2">
            <div><h3>Excluded, by reason</h3>
              ${excluded.length
                ? html`<${Table} caption="Excluded by reason" rows=${excluded.map(([reason, n]) => ({ reason: words(reason), n }))}
                    columns=${[{ key: "reason", label: "Reason" }, { key: "n", label: "Customers", num: true }]} />`
                : html`<p class="empty">Nobody excluded.</p>`}</div>
            <div><h3>Cost</h3>
              <dl class="facts" aria-label="Cost">
                <dt>Points</dt><dd>${fmt(dry.cost?.points)}</dd>
                <dt>Money</dt><dd>${fmt(dry.cost?.amount)}</dd>
                <dt>Coupons</dt><dd>${fmt(dry.cost?.coupons)}</dd>
                <dt>Messages</dt><dd>${messages(dry.cost?.messages)}</dd>
              </dl></div>
          </div>
          <h3>A sample</h3>
          <${Table} caption="Sample of the audience" rows=${dry.sample || []} rowKey=${(s) => s.customer_id} empty="No one in the sample."
            columns=${[
              { key: "customer_id", label: "Customer", render: (s) => html`<a href=${`#/customers/${encodeURIComponent(s.customer_id)}`}>${s.customer_id}</a>` },
              { key: "outcome", label: "Outcome" },
              { key: "reason", label: "Reason", render: (s) => (s.reason ? words(s.reason) : "—") },
            ]} />
        </div>`
      : null}`;
}

function Runs({ campaignId, active }) {
  const list = useLoad(() => get(`${base(campaignId)}/runs`, { limit: 20 }), [campaignId]);
  const [run, setRun] = useState(null);
  const [error, setError] = useState(null);
  const runPath = (id) => `${base(campaignId)}/runs/${encodeURIComponent(id)}`;
  const watch = (id) => get(runPath(id)).then((r) => setRun({ run_id: id, ...r }), setError);

  async function act(doing) {
    setError(null);
    try {
      const answer = await doing();
      setRun((r) => ({ ...(r || {}), ...answer, counts: answer.counts || r?.counts }));
      list.reload();
    } catch (e) {
      setError(e);
    }
  }
  const start = () => act(() => post(`${base(campaignId)}/runs`));
  const cancel = () => act(() => post(`${runPath(run.run_id)}/cancel`));
  const retry = () => act(() => post(`${runPath(run.run_id)}/retry`));

  // While a run runs, its progress every second; polling stops once it has finished.
  useEffect(() => {
    if (!run || FINISHED.includes(run.status)) return undefined;
    const timer = setTimeout(() => {
      get(runPath(run.run_id)).then(
        (r) => {
          setRun({ run_id: run.run_id, ...r });
          if (FINISHED.includes(r.status)) list.reload();
        },
        setError,
      );
    }, 1000);
    return () => clearTimeout(timer);
  }, [run]);

  const running = run && !FINISHED.includes(run.status);
  const runs = list.data?.items || [];
  return html`<div class="actions">
      <button type="button" onClick=${start} disabled=${!active || running}>Start a run now</button>
      ${!active ? html`<span class="hint">Activate the campaign to start a run.</span>` : null}
    </div>
    <${ProblemBanner} error=${error || list.error} />
    ${run ? html`<${RunProgress} run=${run} onCancel=${cancel} onRetry=${retry} />` : null}
    ${runs.length
      ? html`<${Table} caption="Runs, newest first" rows=${runs} rowKey=${(r) => r.run_id}
          columns=${[
            { key: "run_id", label: "Run" },
            { key: "status", label: "Status" },
            { key: "trigger", label: "Started by", render: (r) => r.trigger || "—" },
            { key: "started_at", label: "Started", render: (r) => when(r.started_at) },
            { key: "finished_at", label: "Finished", render: (r) => when(r.finished_at) },
            { key: "actioned", label: "Actioned", num: true, render: (r) => fmt(r.counts?.actioned) },
            { key: "_", label: "", render: (r) => html`<button type="button" class="small secondary" aria-label=${`Show run ${r.run_id}`} onClick=${() => watch(r.run_id)}>Show</button>` },
          ]} />`
      : list.data ? html`<p class="empty">No runs yet.</p>` : null}`;
}

function RunProgress({ run, onCancel, onRetry }) {
  const counts = run.counts || {};
  const skipped = Object.values(counts.skipped || {}).reduce((a, b) => a + b, 0);
  const done = (counts.actioned || 0) + (counts.control || 0) + (counts.failed || 0) + skipped;
  const total = counts.audience || 0;
  const finished = FINISHED.includes(run.status);
  return html`<div class="run" role="region" aria-label=${`Run ${run.run_id}`}>
    <h3>Run ${run.run_id}</h3>
    <p role="status" aria-live="polite">Status: <strong class=${`run-status status-${run.status}`}>${run.status}</strong>
      ${run.counts ? ` — ${done} of ${total} handled` : ""}</p>
    <label for="run-progress">Progress</label>
    <progress id="run-progress" max=${total || 1} value=${finished && run.status === "succeeded" ? total || 1 : Math.min(done, total)}></progress>
    ${run.counts
      ? html`<dl class="facts" aria-label="Counts">
          <dt>Audience</dt><dd>${fmt(counts.audience)}</dd><dt>Control group</dt><dd>${fmt(counts.control)}</dd>
          <dt>Actioned</dt><dd>${fmt(counts.actioned)}</dd><dt>Failed</dt><dd>${fmt(counts.failed)}</dd>
          ${Object.entries(counts.skipped || {}).filter(([, v]) => v).map(([k, v]) => html`<dt>Skipped: ${words(k)}</dt><dd>${v}</dd>`)}
          ${run.attempt > 1 ? html`<dt>Attempt</dt><dd>${run.attempt}</dd>` : null}
          ${run.error ? html`<dt>Error</dt><dd>${run.error}</dd>` : null}
          <dt>Started</dt><dd>${when(run.started_at)}</dd><dt>Finished</dt><dd>${when(run.finished_at)}</dd>
        </dl>`
      : null}
    <div class="actions">
      ${!finished ? html`<button type="button" class="danger" onClick=${onCancel}>Cancel the run</button>` : null}
      ${["failed", "cancelled"].includes(run.status) ? html`<button type="button" class="secondary" onClick=${onRetry}>Retry the run</button>` : null}
    </div>
  </div>`;
}

// ---- the report: treatment against control, uplift with its interval, cost ----------------------

const pct = (v) => (v === null || v === undefined || v === "" ? "—" : `${(Number(v) * 100).toFixed(1)}%`);
const signed = (v, f) => (v === null || v === undefined ? "—" : `${Number(v) > 0 ? "+" : ""}${f(v)}`);
const money = (v) => Number(v).toFixed(2);
const REASONS_NULL = {
  no_treatment: "nobody was actioned yet",
  no_control: "nobody is in the control group yet",
  no_control_conversions: "nobody in the control group converted",
  too_few_customers: "too few customers for an interval",
};
// An estimate with its 95% interval (the report's {value, ci_low, ci_high, reason}).
export function interval(u) {
  if (u === null || u === undefined) return { value: undefined };
  if (typeof u !== "object") return { value: num(u) };
  return { value: num(u.value), low: num(u.ci_low), high: num(u.ci_high), reason: u.reason };
}
function estimate(e, f) {
  if (e.value === undefined) return html`not known (${REASONS_NULL[e.reason] || words(e.reason || "no data")})`;
  const range = e.low !== undefined ? `95% interval ${signed(e.low, f)} to ${signed(e.high, f)}` : `no interval: ${REASONS_NULL[e.reason] || "too few customers"}`;
  return html`<strong>${signed(e.value, f)}</strong> (${range})`;
}

export function CampaignReport({ campaignId }) {
  const [windowDays, setWindowDays] = useState("30");
  const days = num(windowDays) || 30;
  const path = `/v1/admin/reports/campaigns/${encodeURIComponent(campaignId)}`;
  const { data, error, loading, reload } = useLoad(() => get(path, { window_days: days }), [campaignId, days]);
  const groups = data ? ["treatment", "control"].map((g) => ({ group: g, ...(data[g] || {}) })) : [];
  const u = data?.uplift || {};
  const absolute = interval(u.absolute);
  const relative = interval(u.relative);
  const revenue = interval(u.revenue_per_customer);
  const points = (v) => (v === undefined ? 0 : v * 100);
  return html`<div class="row">
      <${Field} label="Window (days after the action)" name="window_days" type="number" min="1" max="365" value=${windowDays}
        onChange=${(e) => setWindowDays(e.currentTarget.value)} />
    </div>
    <${ProblemBanner} error=${error} />
    ${loading && !data ? html`<${Loading} what="Asking the lake" />` : null}
    ${data && !groups.some((g) => g.customers)
      ? html`<p class="empty">Nobody has been actioned or held out yet: the report fills once a run or a trigger has reached customers (the lake is at most a minute behind).</p>`
      : null}
    ${data && groups.some((g) => g.customers)
      ? html`<div class="grid2">
          <${ChartBox} small label=${`Bar chart of the conversion rate within ${days} days: treatment ${pct(groups[0].conversion_rate)}, control ${pct(groups[1].conversion_rate)}; the numbers are in the table below`}
            config=${{
              type: "bar",
              data: {
                labels: ["Treatment", "Control"],
                datasets: [{ label: "Conversion rate (%)", data: groups.map((g) => Number(g.conversion_rate || 0) * 100), backgroundColor: [COLOURS[0], COLOURS[1]] }],
              },
              options: { plugins: { legend: { display: false } }, scales: { y: { beginAtZero: true, title: { display: true, text: "converted, %" } } } },
            }} />
          <${ChartBox} small label=${`Chart of the uplift in conversion, ${signed(absolute.value, pct)}, with its 95% interval ${absolute.low !== undefined ? `${signed(absolute.low, pct)} to ${signed(absolute.high, pct)}` : "not known"}`}
            config=${{
              type: "bar",
              data: {
                labels: ["Uplift"],
                datasets: [
                  { label: "95% interval", data: absolute.low !== undefined ? [[points(absolute.low), points(absolute.high)]] : [], backgroundColor: "rgba(0,114,178,0.35)", borderColor: COLOURS[0], borderWidth: 1 },
                  { type: "line", label: "Estimate", data: absolute.value !== undefined ? [points(absolute.value)] : [], showLine: false, backgroundColor: COLOURS[6], borderColor: COLOURS[6], pointRadius: 6 },
                ],
              },
              options: { scales: { y: { beginAtZero: true, title: { display: true, text: "treatment − control, % points" } } } },
            }} />
        </div>
        <dl class="facts uplift" aria-label="Uplift">
          <dt>Uplift in conversion</dt><dd>${estimate(absolute, pct)}</dd>
          <dt>Relative uplift</dt><dd>${estimate(relative, pct)}</dd>
          <dt>Revenue per customer</dt><dd>${estimate(revenue, money)}</dd>
        </dl>
        <${Table} caption="Treatment and control" rows=${groups}
          columns=${[
            { key: "group", label: "Group" },
            { key: "customers", label: "Customers", num: true },
            { key: "converted", label: "Converted", num: true },
            { key: "conversion_rate", label: "Conversion rate", num: true, render: (g) => pct(g.conversion_rate) },
            { key: "revenue", label: "Revenue", num: true },
            { key: "revenue_per_customer", label: "Revenue per customer", num: true },
          ]} />
        <h3>Cost</h3>
        <${CostFacts} cost=${data.cost} />
        <p class="hint">As of ${when(data.as_of)} (the lake is at most a minute behind).</p>
        <div class="actions"><${Csv} path=${path} query=${{ window_days: days }} name=${`campaign-${campaignId}.csv`} /></div>`
      : null}
    ${data ? html`<div class="actions"><button type="button" class="secondary" onClick=${reload} disabled=${loading}>Refresh the report</button></div>` : null}`;
}

function CostFacts({ cost }) {
  const c = cost || {};
  const coupons = typeof c.coupons === "object" && c.coupons ? c.coupons : { issued: c.coupons };
  return html`<dl class="facts" aria-label="Campaign cost">
    <dt>Points</dt><dd>${fmt(c.points)}</dd>
    <dt>Promotional cash</dt><dd>${fmt(c.amount)}</dd>
    <dt>Coupons issued</dt><dd>${fmt(coupons.issued)}</dd>
    <dt>Coupons redeemed</dt><dd>${fmt(coupons.redeemed)}</dd>
    <dt>Messages</dt><dd>${messages(c.messages)}</dd>
  </dl>`;
}

// ---- the backtest: the campaign as of a past date over the lake --------------------------------

// A group's size whether the answer gives a number or the group ({customers, ...}).
const count = (v) => (v && typeof v === "object" ? v.customers : v);

function Backtest({ campaignId }) {
  const [asOf, setAsOf] = useState(() => new Date(Date.now() - 30 * 86400000).toISOString().slice(0, 10));
  const [windowDays, setWindowDays] = useState("14");
  const [result, setResult] = useState(null);
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  async function run(event) {
    event.preventDefault();
    setError(null);
    setBusy(true);
    try {
      setResult(await post(`${base(campaignId)}/backtest`, { as_of: asOf ? `${asOf}T00:00:00Z` : "", window_days: num(windowDays) }));
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  }
  const errors = campaignErrors(error);
  const groups = result ? ["treatment", "control"].filter((g) => result[g]).map((g) => ({ group: g, ...result[g] })) : [];
  return html`<p class="hint">Who the campaign's segment held on a past date, and how they bought in the days after it.</p>
    <form onSubmit=${run} class="row" novalidate>
      <${Field} label="As of" name="as_of" type="date" value=${asOf} onInput=${(e) => setAsOf(e.currentTarget.value)} errors=${errors} />
      <${Field} label="Following days" name="window_days" type="number" min="1" max="365" value=${windowDays} onInput=${(e) => setWindowDays(e.currentTarget.value)} errors=${errors} />
      <div class="field submit"><button type="submit" disabled=${busy}>Backtest</button></div>
    </form>
    <${ProblemBanner} error=${error} shown=${["as_of", "window_days"]} />
    ${busy ? html`<p class="loading" role="status">Asking the lake…</p>` : null}
    ${result
      ? html`<div role="region" aria-label="Backtest result">
          ${result.audience !== undefined ? html`<${Cards} label="Backtest audience" items=${[["Audience", count(result.audience)], ["Control group", count(result.control)], ["As of", when(result.as_of)]]} />` : null}
          ${groups.length
            ? html`<${Table} caption="How they bought afterwards" rows=${groups}
                columns=${[
                  { key: "group", label: "Group" },
                  { key: "customers", label: "Customers", num: true },
                  { key: "converted", label: "Converted", num: true },
                  { key: "conversion_rate", label: "Conversion rate", num: true, render: (g) => pct(g.conversion_rate) },
                  { key: "revenue", label: "Revenue", num: true },
                ]} />`
            : html`<dl class="facts">${Object.entries(result).map(([k, v]) => html`<dt>${words(k)}</dt><dd>${fmt(v)}</dd>`)}</dl>`}
        </div>`
      : null}`;
}
