// Reports as charts, the numbers a click away (a table under each chart) and the CSV download.
import { useState } from "preact/hooks";
import { Problem, get } from "./api.js";
import { CampaignReport } from "./campaigns.js";
import { COLOURS, ChartBox } from "./charts.js";
import { Csv, Field, Loading, Page, ProblemBanner, Table, html, useLoad, when } from "./ui.js";

const isoDay = (d) => d.toISOString().slice(0, 10);
const daysAgo = (n) => isoDay(new Date(Date.now() - n * 86400000));

export function Reports({ campaigns }) {
  const [tab, setTab] = useState("activity");
  const tabs = [
    ["activity", "Activity"],
    ["members", "Members vs non-members"],
    ...(campaigns ? [["uplift", "Campaign uplift"]] : []),
    ["cohorts", "Cohort retention"],
  ];
  function keys(event, i) {
    const next = event.key === "ArrowRight" ? i + 1 : event.key === "ArrowLeft" ? i - 1 : null;
    if (next === null) return;
    const [id] = tabs[(next + tabs.length) % tabs.length];
    setTab(id);
    document.getElementById(`tab-${id}`)?.focus();
  }
  return html`<${Page} title="Reports">
    <div role="tablist" aria-label="Reports" class="tabs">
      ${tabs.map(
        ([id, label], i) => html`<button type="button" role="tab" id=${`tab-${id}`} aria-selected=${tab === id}
          aria-controls=${`panel-${id}`} tabindex=${tab === id ? 0 : -1} onClick=${() => setTab(id)}
          onKeyDown=${(e) => keys(e, i)}>${label}</button>`,
      )}
    </div>
    <div role="tabpanel" id=${`panel-${tab}`} aria-labelledby=${`tab-${tab}`}>
      ${tab === "activity"
        ? html`<${Activity} />`
        : tab === "members"
          ? html`<${Members} />`
          : tab === "uplift"
            ? html`<${CampaignUplift} />`
            : html`<${Cohorts} />`}
    </div>
  </${Page}>`;
}

function AsOf({ value }) {
  return html`<p class="hint">As of ${when(value)} (the lake is at most a minute behind).</p>`;
}

function Activity() {
  const [form, setForm] = useState({ from: daysAgo(30), to: isoDay(new Date()), interval: "day", by: "channel", metric: "revenue" });
  const [query, setQuery] = useState(form);
  const { data, error, loading } = useLoad(
    () => get("/v1/admin/reports/activity", { from: query.from, to: query.to, interval: query.interval, by: query.by }),
    [query.from, query.to, query.interval, query.by],
  );
  const set = (name) => (e) => setForm((f) => ({ ...f, [name]: e.currentTarget.value }));
  const errors = error instanceof Problem ? error.fields() : null;
  const rows = data?.rows || [];
  const periods = [...new Set(rows.map((r) => r.period))].sort();
  const groups = [...new Set(rows.map((r) => r[query.by] ?? "—"))].sort();
  const metric = form.metric;
  const datasets = groups.map((g, i) => ({
    label: g,
    data: periods.map((p) => {
      const row = rows.find((r) => r.period === p && (r[query.by] ?? "—") === g);
      return row ? Number(row[metric]) : 0;
    }),
    borderColor: COLOURS[i % COLOURS.length],
    backgroundColor: COLOURS[i % COLOURS.length],
  }));
  return html`<form class="inline" onSubmit=${(e) => { e.preventDefault(); setQuery(form); }}>
      <div class="row">
        <${Field} label="From" name="from" type="date" value=${form.from} onInput=${set("from")} errors=${errors} />
        <${Field} label="To" name="to" type="date" value=${form.to} onInput=${set("to")} errors=${errors} />
        <${Field} label="Interval" name="interval" type="select" options=${["day", "week", "month"]} value=${form.interval} onChange=${set("interval")} errors=${errors} />
        <${Field} label="By" name="by" type="select" options=${["channel", "store"]} value=${form.by} onChange=${set("by")} errors=${errors} />
        <${Field} label="Measure" name="metric" type="select" value=${form.metric} onChange=${set("metric")}
          options=${["revenue", "transactions", "customers", "members", "non_members", "anonymous", "new_members", "points_earned", "points_redeemed"]} />
        <div class="field submit"><button type="submit">Show</button></div>
      </div>
    </form>
    <${ProblemBanner} error=${error} shown=${["from", "to", "interval", "by"]} />
    ${loading && !data ? html`<${Loading} what="Asking the lake" />` : null}
    ${data
      ? html`<h2>${metric.replace("_", " ")} by ${query.by}, per ${query.interval}</h2>
        ${rows.length
          ? html`<${ChartBox} label=${`Line chart of ${metric} by ${query.by} per ${query.interval}; the numbers are in the table below`}
              config=${{ type: "line", data: { labels: periods, datasets }, options: { scales: { y: { beginAtZero: true } } } }} />`
          : html`<p class="empty">No activity in these days.</p>`}
        <${AsOf} value=${data.as_of} />
        <div class="actions"><${Csv} path="/v1/admin/reports/activity" query=${{ from: query.from, to: query.to, interval: query.interval, by: query.by }} name="activity.csv" /></div>
        <details><summary>The numbers</summary>
          <${Table} caption="Activity" rows=${rows}
            columns=${[
              { key: "period", label: "Period" },
              { key: query.by, label: query.by },
              { key: "transactions", label: "Transactions", num: true },
              { key: "revenue", label: "Revenue", num: true },
              { key: "customers", label: "Customers", num: true },
              { key: "members", label: "Members", num: true },
              { key: "non_members", label: "Non-members", num: true },
              { key: "anonymous", label: "Anonymous", num: true },
              { key: "new_members", label: "New members", num: true },
              { key: "points_earned", label: "Points earned", num: true },
              { key: "points_redeemed", label: "Points redeemed", num: true },
            ]} />
        </details>`
      : null}`;
}

function Members() {
  const [form, setForm] = useState({ from: daysAgo(90), to: isoDay(new Date()) });
  const [query, setQuery] = useState(form);
  const { data, error, loading } = useLoad(() => get("/v1/admin/reports/members-vs-non-members", query), [query.from, query.to]);
  const set = (name) => (e) => setForm((f) => ({ ...f, [name]: e.currentTarget.value }));
  const errors = error instanceof Problem ? error.fields() : null;
  const rows = data?.rows || [];
  return html`<form class="inline" onSubmit=${(e) => { e.preventDefault(); setQuery(form); }}>
      <div class="row">
        <${Field} label="From" name="from" type="date" value=${form.from} onInput=${set("from")} errors=${errors} />
        <${Field} label="To" name="to" type="date" value=${form.to} onInput=${set("to")} errors=${errors} />
        <div class="field submit"><button type="submit">Show</button></div>
      </div>
    </form>
    <${ProblemBanner} error=${error} shown=${["from", "to"]} />
    ${loading && !data ? html`<${Loading} what="Asking the lake" />` : null}
    ${data
      ? html`<h2>Revenue and average basket by group</h2>
        <${ChartBox} label="Bar chart of revenue and average basket for members, non-members and anonymous buyers; the numbers are in the table below"
          config=${{
            type: "bar",
            data: {
              labels: rows.map((r) => r.group),
              datasets: [
                { label: "Revenue", data: rows.map((r) => Number(r.revenue)), backgroundColor: COLOURS[0], yAxisID: "y" },
                { label: "Average basket", data: rows.map((r) => Number(r.average_basket)), backgroundColor: COLOURS[1], yAxisID: "y1" },
              ],
            },
            options: { scales: { y: { beginAtZero: true, position: "left" }, y1: { beginAtZero: true, position: "right", grid: { drawOnChartArea: false } } } },
          }} />
        <${AsOf} value=${data.as_of} />
        <div class="actions"><${Csv} path="/v1/admin/reports/members-vs-non-members" query=${query} name="members-vs-non-members.csv" /></div>
        <details><summary>The numbers</summary>
          <${Table} caption="Members vs non-members" rows=${rows}
            columns=${[
              { key: "group", label: "Group" },
              { key: "transactions", label: "Transactions", num: true },
              { key: "revenue", label: "Revenue", num: true },
              { key: "customers", label: "Customers", num: true },
              { key: "average_basket", label: "Average basket", num: true },
              { key: "purchases_per_customer", label: "Purchases per customer", num: true },
              { key: "share_of_revenue", label: "Share of revenue", num: true },
            ]} />
        </details>`
      : null}`;
}

function Cohorts() {
  const { data, error, loading } = useLoad(() => get("/v1/admin/reports/cohorts", { by: "enrolment_month" }), []);
  const rows = (data?.rows || []).filter((r) => r.month_offset !== null);
  const cohorts = [...new Set(rows.map((r) => r.cohort))].sort();
  const offsets = [...new Set(rows.map((r) => r.month_offset))].sort((a, b) => a - b);
  const datasets = cohorts.map((c, i) => ({
    label: c,
    data: offsets.map((o) => {
      const row = rows.find((r) => r.cohort === c && r.month_offset === o);
      return row && row.retention !== null ? Number(row.retention) * 100 : null;
    }),
    borderColor: COLOURS[i % COLOURS.length],
    backgroundColor: COLOURS[i % COLOURS.length],
  }));
  return html`<${ProblemBanner} error=${error} />
    ${loading && !data ? html`<${Loading} what="Asking the lake" />` : null}
    ${data
      ? html`<h2>Share of each enrolment cohort that purchased, by month since enrolment</h2>
        ${rows.length
          ? html`<${ChartBox} label="Line chart of retention per enrolment cohort by month since enrolment; the numbers are in the table below"
              config=${{
                type: "line",
                data: { labels: offsets.map((o) => `month ${o}`), datasets },
                options: { scales: { y: { beginAtZero: true, max: 100, title: { display: true, text: "% purchased" } } } },
              }} />`
          : html`<p class="empty">No cohorts yet: nobody has enrolled.</p>`}
        <${AsOf} value=${data.as_of} />
        <div class="actions"><${Csv} path="/v1/admin/reports/cohorts" query=${{ by: "enrolment_month" }} name="cohorts.csv" /></div>
        <details><summary>The numbers</summary>
          <${Table} caption="Cohort retention" rows=${data.rows}
            columns=${[
              { key: "cohort", label: "Cohort" },
              { key: "cohort_size", label: "Size", num: true },
              { key: "month_offset", label: "Month", num: true },
              { key: "active", label: "Purchased", num: true },
              { key: "retention", label: "Retention", num: true },
            ]} />
        </details>`
      : null}`;
}

function CampaignUplift() {
  const list = useLoad(() => get("/v1/admin/campaigns", { limit: 200 }), []);
  const [campaignId, setCampaignId] = useState("");
  const options = [{ value: "", label: "Choose a campaign" }, ...(list.data?.items || []).map((c) => ({ value: c.campaign_id, label: `${c.name} (${c.campaign_id})` }))];
  return html`<${ProblemBanner} error=${list.error} />
    <div class="row">
      <${Field} label="Campaign" name="campaign_id" type="select" options=${options} value=${campaignId} onChange=${(e) => setCampaignId(e.currentTarget.value)} />
    </div>
    ${campaignId ? html`<${CampaignReport} key=${campaignId} campaignId=${campaignId} />` : null}`;
}
