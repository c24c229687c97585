# syntax=docker/dockerfile:1
# The CDSS reference server (REST API, WebSocket notifications, /metrics) as a small, non-root image.
# Build from the repository root:
#   docker build -f deploy/docker/server.Dockerfile -t cdss/reference-server:0.1.0 .
# Debian slim rather than Alpine: onnxruntime-node (pulled in through @cdss/segmentation) ships glibc binaries only.

# ---- build: install the workspace from the lockfile, build the server and the packages it uses, then make a
# self-contained production folder (pnpm deploy: the server, its built @cdss/* dependencies, prod node_modules),
# minus the TypeScript sources and the macOS/Windows builds of onnxruntime (about 180 MB).
FROM node:24.22.3-bookworm-slim AS build
WORKDIR /src
RUN npm install --global --no-audit --no-fund --loglevel=error pnpm@12.4.2
COPY package.json pnpm-lock.yaml pnpm-workspace.yaml tsconfig.base.json ./
COPY packages ./packages
COPY examples ./examples
COPY bench/package.json ./bench/package.json
RUN pnpm install --frozen-lockfile
RUN pnpm --filter "@cdss/reference-server..." build \
 && pnpm --filter @cdss/reference-server deploy --prod --legacy /out \
 && rm -rf /out/src /out/test /out/node_modules/.pnpm/onnxruntime-node@*/node_modules/onnxruntime-node/bin/napi-v*/darwin \
      /out/node_modules/.pnpm/onnxruntime-node@*/node_modules/onnxruntime-node/bin/napi-v*/win32

# ---- runtime: Node and the deployed folder, nothing else.
# Connected mode by default: a plain `docker run` without configuration stops, naming each missing variable. The
# sandbox (embedded systems, demo tokens) is for `npm start` on a workstation, and even then serves its token route
# only on a loopback HOST.
FROM node:24.22.3-bookworm-slim AS runtime
# Memory bounded and the same on every host (docs/guides/deploy.md, "Memory"). Uncapped, V8 sizes its heap from the
# host's RAM and lets it grow to up to 4x what is alive after a full GC: in the soak a server held 290 MiB of heap for
# 80 MiB alive, RSS 480 MiB. Capped at 512 MiB (inside the chart's 1 GiB limit) it stays at 1.6-1.8x: 130-145 MiB of
# heap, RSS 255-275 MiB, for more (concurrent) full GCs. MALLOC_ARENA_MAX=2: glibc's default is 8 arenas per core,
# so it grows with the node's size; no measurable change on the 2-core soak machine.
ENV NODE_OPTIONS=--max-old-space-size=512 \
    MALLOC_ARENA_MAX=2
ENV NODE_ENV=production \
    CDSS_MODE=connected \
    HOST=0.0.0.0 \
    PORT=8080 \
    CDSS_DATA_DIR=/data \
    CDSS_WORKER=off
# Same layout as the repository (examples/reference-server, models/) so the server finds the demo model manifest.
WORKDIR /app/examples/reference-server
COPY --from=build --chown=root:root /out ./
COPY --from=build --chown=root:root /src/models /app/models
RUN mkdir -p /data && chown node:node /data
VOLUME ["/data"]
USER node
EXPOSE 8080
# No --start-period here: dockerfilelint 1.8 rejects it; deploy/compose.yaml sets start_period.
HEALTHCHECK --interval=15s --timeout=3s --retries=4 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 8080) + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
CMD ["node", "--enable-source-maps", "dist/main.js"]
