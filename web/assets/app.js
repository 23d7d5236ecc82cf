// The app's shell: signing in with a kiln token, the navigation its scopes allow (a `run` token
// sees notebooks and the catalogue; a `review` token also the review queue), and the pages by
// the address's #fragment.

import { ApiError, getJson, setToken, token } from "./api.js";
import { forgetSession } from "./browser-run.js";
import { showCatalogue } from "./catalogue.js";
import { h, replace } from "./dom.js";
import { showEditor } from "./editor.js";
import { showNotebooks } from "./notebooks.js";
import { showQueue, showSubmission } from "./review.js";
import { showTokens } from "./tokens.js";

const main = document.getElementById("main");
const nav = document.getElementById("nav");
const who = document.getElementById("who");

/** The signed-in person: `{login, scopes}`. */
let session = null;

function has(scope) {
  return Boolean(session) && (session.scopes.includes(scope) || session.scopes.includes("admin"));
}

/** Who the token belongs to: the registry says (`kiln serve`); an executor alone only checks it. */
async function whoami() {
  try {
    return await getJson("/api/kiln/v1/whoami");
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) {
      await getJson("/v1/policy");
      return { login: "signed in", scopes: ["run"] };
    }
    throw err;
  }
}

function signInPage(message) {
  session = null;
  replace(nav);
  replace(who);
  const input = h("input", { id: "token", type: "password", autocomplete: "off", placeholder: "kiln_…", size: 48 });
  const error = h("p", { class: "status-error", id: "sign-in-error" }, message ?? "");
  replace(
    main,
    h(
      "form",
      {
        class: "sign-in",
        id: "sign-in",
        onsubmit: async (event) => {
          event.preventDefault();
          setToken(input.value.trim());
          await start();
        },
      },
      h("h1", {}, "Sign in to kiln"),
      h("p", {}, "Paste a kiln API token. ", h("code", {}, "kiln token create --login NAME --scope run"), " makes one; the admin token (DATA/admin.token) can do everything."),
      input,
      h("button", { class: "primary", type: "submit" }, "Sign in"),
      error,
    ),
  );
  input.focus();
}

function navigation() {
  const links = [];
  if (has("run")) links.push(["#/notebooks", "Notebooks"]);
  links.push(["#/catalogue", "Catalogue"]);
  if (has("review")) links.push(["#/review", "Review"]);
  if (session.token_id !== undefined) links.push(["#/tokens", "Tokens"]);
  replace(nav, links.map(([href, label]) => h("a", { href, id: `nav-${label.toLowerCase()}` }, label)));
  replace(
    who,
    h("span", { id: "login" }, session.login),
    " ",
    h(
      "button",
      {
        id: "sign-out",
        onclick: async () => {
          setToken(null);
          await forgetSession();
          signInPage();
        },
      },
      "Sign out",
    ),
  );
}

async function route() {
  if (!session) return;
  const parts = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  for (const link of nav.querySelectorAll("a")) link.classList.toggle("current", location.hash.startsWith(link.getAttribute("href")));
  replace(main, h("p", { class: "muted" }, "Loading…"));
  try {
    if (parts[0] === "catalogue") await showCatalogue(main);
    else if (parts[0] === "tokens") await showTokens(main, session);
    else if (parts[0] === "review" && !has("review")) throw new ApiError(403, "forbidden", "the review queue needs a token with the `review` scope");
    else if (parts[0] === "review" && parts.length >= 3) await showSubmission(main, parts[1], parts[2]);
    else if (parts[0] === "review") await showQueue(main);
    else if (parts[0] === "notebooks" && parts[1]) await showEditor(main, parts[1]);
    else if (has("run")) await showNotebooks(main);
    else await showCatalogue(main);
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) {
      signInPage(err.message);
      return;
    }
    replace(main, h("p", { class: "status-error", id: "page-error" }, err.message ?? String(err)));
  }
  document.body.dataset.ready = "true";
  document.body.dataset.readyMs ??= String(Math.round(performance.now()));
}

async function start() {
  if (!token()) {
    signInPage();
    return;
  }
  try {
    session = await whoami();
  } catch (err) {
    setToken(null);
    signInPage(err.message);
    return;
  }
  navigation();
  await route();
}

// Anything the Content-Security-Policy refuses is counted where people and tests can see it.
document.addEventListener("securitypolicyviolation", (event) => {
  const seen = document.body.dataset.cspViolations ? `${document.body.dataset.cspViolations} ` : "";
  document.body.dataset.cspViolations = `${seen}${event.violatedDirective}:${event.blockedURI}`;
});
window.addEventListener("hashchange", route);
// Once loaded, the app keeps working when kiln cannot be reached (sw.js).
navigator.serviceWorker?.register("/app/sw.js", { scope: "/" }).catch((err) => {
  document.body.dataset.serviceWorkerError = err.message;
});
start();
