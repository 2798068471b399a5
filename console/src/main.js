// The console's shell: sign-in, navigation and hash routes (#/customers/<id>, #/offers/new …).
import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { Problem, get, kindOf, session } from "./api.js";
import { Campaigns } from "./campaigns.js";
import { Segments } from "./segments.js";
import { Catalogue, KINDS } from "./catalogue.js";
import { CustomerSearch, CustomerView } from "./customers.js";
import { Keys } from "./keys.js";
import { Reports } from "./reports.js";
import { Field, Page, ProblemBanner, html } from "./ui.js";

const NAV = [
  ["customers", "Customers"],
  ["segments", "Segments", null, "segments"],
  ["campaigns", "Campaigns", null, "campaigns"],
  ["offers", "Offers"],
  ["challenges", "Challenges"],
  ["badges", "Badges"],
  ["templates", "Templates"],
  ["reports", "Reports"],
  ["keys", "API keys", "admin"],
];

const route = () => (window.location.hash.replace(/^#\/?/, "") || "customers").split("/").map(decodeURIComponent);
const navigate = (hash) => {
  window.location.hash = hash;
};

function SignIn({ onSignedIn }) {
  const [key, setKey] = useState("");
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  async function submit(event) {
    event.preventDefault();
    setError(null);
    setBusy(true);
    try {
      const kind = await kindOf(key.trim());
      session.save(key.trim(), kind);
      onSignedIn(kind);
    } catch (e) {
      setError(e instanceof Problem && e.status === 401 ? new Problem(401, { title: "Unknown key", detail: "this key is unknown or revoked", errors: [{ loc: ["api_key"], msg: "unknown or revoked key" }] }) : e);
    } finally {
      setBusy(false);
    }
  }
  const errors = error instanceof Problem ? error.fields() : null;
  return html`<main id="main" class="signin">
    <${Page} title="Sign in to the loyalty console">
      <form onSubmit=${submit}>
        <p>Use an <strong>admin</strong> or <strong>marketer</strong> API key. It is kept for this tab only and forgotten when the tab closes.</p>
        <${Field} label="API key" name="api_key" type="password" autocomplete="off" required value=${key}
          onInput=${(e) => setKey(e.currentTarget.value)} errors=${errors} />
        <${ProblemBanner} error=${error} shown=${["api_key"]} />
        <button type="submit" disabled=${busy || !key.trim()}>Sign in</button>
      </form>
    </${Page}>
  </main>`;
}

// Segments and campaigns arrive with their APIs (issues 17 and 19): a screen shows once its API answers.
async function available(kind) {
  const found = {};
  for (const area of ["segments", "campaigns"]) {
    try {
      await get(`/v1/admin/${area}`, { limit: 1 });
      found[area] = true;
    } catch (e) {
      found[area] = !(e instanceof Problem && e.status === 404);
    }
  }
  return found;
}

function App() {
  const [kind, setKind] = useState(session.key() ? session.kind() : null);
  const [parts, setParts] = useState(route);
  // null until the probe answers: the shell paints once, with its final navigation. Painting it first
  // and adding Segments later shifted every link under a pointer about to click (it landed on the
  // neighbour) and changed the Tab order under a keyboard user's feet.
  const [apis, setApis] = useState(null);
  useEffect(() => {
    setApis(null);
    if (kind) available(kind).then(setApis, () => setApis({}));
  }, [kind]);
  useEffect(() => {
    const onHash = () => {
      setParts(route());
      // Move focus to the new screen's heading, so keyboard and screen-reader users land on it.
      setTimeout(() => document.getElementById("page-title")?.focus(), 0);
    };
    const onSignedOut = () => {
      session.clear();
      setKind(null);
    };
    window.addEventListener("hashchange", onHash);
    window.addEventListener("console:signed-out", onSignedOut);
    return () => {
      window.removeEventListener("hashchange", onHash);
      window.removeEventListener("console:signed-out", onSignedOut);
    };
  }, []);

  if (!kind) return html`<${SignIn} onSignedIn=${setKind} />`;
  if (!apis) return html`<main id="main"><p role="status" class="loading">Loading the console…</p></main>`;
  const [screen, arg, sub] = parts;
  const signOut = () => {
    session.clear();
    setKind(null);
  };
  let body;
  if (screen === "customers" && arg) body = html`<${CustomerView} customerId=${arg} navigate=${navigate} />`;
  else if (screen === "customers") body = html`<${CustomerSearch} navigate=${navigate} />`;
  else if (screen === "segments" && apis.segments) body = html`<${Segments} arg=${arg} sub=${sub} />`;
  else if (screen === "campaigns" && apis.campaigns) body = html`<${Campaigns} arg=${arg} sub=${sub} navigate=${navigate} />`;
  else if (KINDS[screen]) body = html`<${Catalogue} key=${screen} kind=${screen} editing=${arg} navigate=${navigate} />`;
  else if (screen === "reports") body = html`<${Reports} campaigns=${apis.campaigns} />`;
  else if (screen === "keys" && kind === "admin") body = html`<${Keys} />`;
  else body = html`<${Page} title="Not here"><p>There is no such screen for your key.</p></${Page}>`;

  return html`<a class="skip" href="#main" onClick=${(e) => { e.preventDefault(); document.getElementById("page-title")?.focus(); }}>Skip to content</a>
    <header class="top">
      <span class="brand">Loyalty console</span>
      <nav aria-label="Main">
        <ul>
          ${NAV.filter(([, , only, api]) => (!only || only === kind) && (!api || apis[api])).map(
            ([id, label]) => html`<li><a href=${`#/${id}`} aria-current=${screen === id ? "page" : undefined}>${label}</a></li>`,
          )}
        </ul>
      </nav>
      <span class="who">Signed in: ${kind}</span>
      <button type="button" class="secondary small" onClick=${signOut}>Sign out</button>
    </header>
    <main id="main">${body}</main>`;
}

render(html`<${App} />`, document.getElementById("app"));
