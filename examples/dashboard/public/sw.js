/*
 * The dashboard's service worker: it caches the application shell only (the HTML page, the built scripts, styles,
 * decoders and icons), never patient data. API (/api), image (/dicomweb) and WebSocket (/ws) requests are not
 * intercepted at all, so nothing a patient's record holds is ever written to the device by this worker.
 */
const SHELL = 'cdss-shell-v1';
const PRECACHE = ['/', '/manifest.webmanifest', '/icon-192.png', '/icon-512.png'];
const NEVER = [/^\/api\//, /^\/dicomweb\//, /^\/ws$/, /^\/openapi\.json$/, /^\/metrics$/, /^\/healthz$/, /^\/readyz$/];

self.addEventListener('install', (event) => {
  event.waitUntil(
    caches
      .open(SHELL)
      .then((cache) => cache.addAll(PRECACHE))
      .then(() => self.skipWaiting()),
  );
});

self.addEventListener('activate', (event) => {
  event.waitUntil(
    caches
      .keys()
      .then((keys) => Promise.all(keys.filter((key) => key !== SHELL).map((key) => caches.delete(key))))
      .then(() => self.clients.claim()),
  );
});

self.addEventListener('fetch', (event) => {
  const request = event.request;
  if (request.method !== 'GET') return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin || NEVER.some((re) => re.test(url.pathname))) return;
  if (request.headers.has('authorization')) return;
  if (request.mode === 'navigate') {
    // Pages: the network first (new releases), the cached shell when offline. Routes are client-side, so the
    // shell answers every path.
    event.respondWith(
      fetch(request)
        .then((response) => {
          if (response.ok) {
            const copy = response.clone();
            void caches.open(SHELL).then((cache) => cache.put('/', copy));
          }
          return response;
        })
        .catch(() => caches.match('/').then((cached) => cached ?? Response.error())),
    );
    return;
  }
  if (url.pathname.startsWith('/assets/')) {
    // Built files have content hashes in their names: cache first.
    event.respondWith(
      caches.match(request).then(
        (cached) =>
          cached ??
          fetch(request).then((response) => {
            if (response.ok) {
              const copy = response.clone();
              void caches.open(SHELL).then((cache) => cache.put(request, copy));
            }
            return response;
          }),
      ),
    );
  }
});
