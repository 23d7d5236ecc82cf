// Tokens: a person's own API tokens (every token, for an admin), revoked with one click; an
// admin also creates them here, the secret shown once. Cargo's `cargo login` sends people to
// `/me`, which opens this page.

import { request, getJson, sendJson } from "./api.js";
import { h, replace, when } from "./dom.js";

const SCOPES = ["publish", "yank", "review", "worker", "run", "admin"];

function createForm(main, isAdmin, current) {
  if (!isAdmin) return null;
  const created = h("div", { id: "token-created" });
  const login = h("input", { id: "token-login", placeholder: "login", required: true });
  const name = h("input", { id: "token-name", placeholder: "name (what it is for)", value: "created in the web app" });
  const boxes = SCOPES.map((scope) => h("label", {}, h("input", { type: "checkbox", class: "token-scope", value: scope }), ` ${scope} `));
  return h(
    "section",
    {},
    h("h2", {}, "New token"),
    h(
      "form",
      {
        class: "inline-form",
        id: "new-token",
        onsubmit: async (event) => {
          event.preventDefault();
          const scopes = [...main.querySelectorAll(".token-scope:checked")].map((b) => b.value);
          try {
            const token = await sendJson("POST", "/api/kiln/v1/tokens", { login: login.value, name: name.value, scopes });
            replace(
              created,
              h("p", { class: "status-ok" }, `Token ${token.id} for ${token.login}; copy it now, it is not shown again:`),
              h("pre", { id: "token-secret" }, token.token),
            );
            await listTokens(main.querySelector("#tokens"), current);
          } catch (err) {
            replace(created, h("p", { class: "status-error" }, err.message));
          }
        },
      },
      login,
      name,
      boxes,
      h("button", { class: "primary", type: "submit" }, "Create"),
    ),
    created,
  );
}

async function listTokens(table, current) {
  const tokens = await getJson("/api/kiln/v1/tokens");
  replace(
    table,
    h("thead", {}, h("tr", {}, ["id", "login", "name", "scopes", "crates", "expires", "state", ""].map((t) => h("th", {}, t)))),
    h(
      "tbody",
      {},
      tokens.map((t) =>
        h(
          "tr",
          { "data-token": t.id },
          h("td", {}, String(t.id)),
          h("td", {}, t.login),
          h("td", {}, t.name),
          h("td", {}, t.scopes.join(", ")),
          h("td", {}, t.crate_pattern ?? "all"),
          h("td", {}, t.expires_at ? when(t.expires_at) : "never"),
          h(
            "td",
            { class: t.revoked_at ? "state-error" : "state-ok" },
            t.revoked_at ? `revoked ${when(t.revoked_at)}` : t.id === current ? "live (signed in with it)" : "live",
          ),
          h(
            "td",
            {},
            t.revoked_at
              ? null
              : h(
                  "button",
                  {
                    class: "revoke-token danger",
                    onclick: async () => {
                      await request("DELETE", `/api/kiln/v1/tokens/${t.id}`);
                      await listTokens(table, current);
                    },
                  },
                  "Revoke",
                ),
          ),
        ),
      ),
    ),
  );
}

/** Shows the tokens page in `main`. */
export async function showTokens(main, session) {
  const isAdmin = session.scopes.includes("admin");
  const table = h("table", { class: "list", id: "tokens" });
  replace(
    main,
    h("h1", {}, "API tokens"),
    h(
      "p",
      {},
      "Cargo asks for one at ",
      h("code", {}, "cargo login --registry kiln"),
      "; ",
      h("code", {}, "kiln token create --login NAME --scope publish"),
      " (an admin) makes one. Revoking a token stops it everywhere within 30 seconds.",
    ),
    table,
    createForm(main, isAdmin, session.token_id),
  );
  await listTokens(table, session.token_id);
}
