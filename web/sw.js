// Hamster Terminal service worker: keeps the app shell (index.html, the JS glue, the wasm, the CSS) available
// when the relay that serves it is down, so a reload still shows the quotes cached in localStorage.
//
// Strategy: network first, cache as fallback. A reachable relay always wins, so a new build is picked up on
// the next load; the cache is only read when the network fails. Live data (/api, /ws, health, metrics) is
// never cached here — the app has its own cache for quotes and must see real failures to report them.

const CACHE = "hamster-shell-v1";
const LIVE = /^\/(api|ws|healthz|metrics)(\/|$)/;

// Trunk names assets with content hashes, so the shell's files are discovered from index.html at install
// time: the page that registered us loaded them before we could see the requests.
const ASSET = /["'](\/?[\w\-./]+\.(?:js|wasm|css))["']/g;

self.addEventListener("install", (event) => {
    event.waitUntil((async () => {
        const cache = await caches.open(CACHE);
        const scope = new URL(self.registration.scope);
        const index = await fetch(scope.href, { cache: "no-store" });
        if (!index.ok) return;
        const html = await index.clone().text();
        await cache.put(scope.href, index);
        const urls = new Set();
        for (const m of html.matchAll(ASSET)) {
            const url = new URL(m[1], scope);
            if (url.origin === scope.origin && url.pathname !== "/sw.js") urls.add(url.href);
        }
        // One missing asset must not abort the install (and leave no shell at all).
        await Promise.all([...urls].map(async (u) => {
            try {
                const res = await fetch(u, { cache: "no-store" });
                if (res.ok) await cache.put(u, res);
            } catch (_) { /* best effort */ }
        }));
        await self.skipWaiting();
    })());
});

self.addEventListener("activate", (event) => {
    event.waitUntil((async () => {
        for (const key of await caches.keys()) {
            if (key !== CACHE) await caches.delete(key);
        }
        await self.clients.claim();
    })());
});

self.addEventListener("fetch", (event) => {
    const req = event.request;
    if (req.method !== "GET") return;
    const url = new URL(req.url);
    if (url.origin !== self.location.origin || LIVE.test(url.pathname)) return;
    const scope = new URL(self.registration.scope);
    // Every navigation inside the scope is the single-page app: store and serve it as the scope's index.
    const key = req.mode === "navigate" ? scope.href : req;
    event.respondWith((async () => {
        try {
            const res = await fetch(req);
            if (res.ok && res.type === "basic") {
                const copy = res.clone();
                event.waitUntil(caches.open(CACHE).then((c) => c.put(key, copy)));
            }
            return res;
        } catch (err) {
            const hit = await caches.match(key, { ignoreSearch: true, cacheName: CACHE });
            if (hit) return hit;
            throw err;
        }
    })());
});
