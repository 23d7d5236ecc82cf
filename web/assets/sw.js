// The app's service worker: the page keeps working once loaded when kiln cannot be reached. The
// app's files (and what a browser run reads to verify: the trust file, the policy, the catalogue,
// the notebook) are answered from the network when it answers, and from the last good copy when
// it does not. Kernels' artifacts are not handled here: browser-run.js keeps them by digest and
// checks them itself.

const APP = "kiln-app-v1";

/** The app's own files, kept at install so that the first offline load has them all. */
const FILES = [
  "/",
  "/app/style.css",
  "/app/icon.svg",
  "/app/app.js",
  "/app/api.js",
  "/app/dom.js",
  "/app/markdown.js",
  "/app/render.js",
  "/app/notebooks.js",
  "/app/editor.js",
  "/app/runs.js",
  "/app/catalogue.js",
  "/app/review.js",
  "/app/tokens.js",
  "/app/verify.js",
  "/app/browser-run.js",
  "/app/kernel-worker.js",
];

/** API answers kept for offline reads (GET only, never a token's own data beyond the notebook). */
const KEPT_API = /^\/(v1\/(policy|catalogue|trust|notebooks\/[^/]+)|api\/kiln\/v1\/whoami)$/;

self.addEventListener("install", (event) => {
  event.waitUntil(
    caches
      .open(APP)
      .then((cache) => cache.addAll(FILES))
      .then(() => self.skipWaiting()),
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil(self.clients.claim());
});

self.addEventListener("fetch", (event) => {
  const request = event.request;
  const url = new URL(request.url);
  if (request.method !== "GET" || url.origin !== self.location.origin) return;
  const isApp = url.pathname === "/" || url.pathname.startsWith("/app/");
  if (!isApp && !KEPT_API.test(url.pathname)) return;
  // The key: the path (the token is a header; a signed-out page clears these caches).
  const key = url.pathname;
  event.respondWith(
    (async () => {
      const cache = await caches.open(APP);
      try {
        const response = await fetch(request);
        if (response.ok) await cache.put(key, response.clone());
        return response;
      } catch (err) {
        const kept = await cache.match(key);
        if (kept) return kept;
        throw err;
      }
    })(),
  );
});
