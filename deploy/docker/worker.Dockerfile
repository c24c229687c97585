# syntax=docker/dockerfile:1
# The CDSS AI worker (consumes analysis jobs from RabbitMQ, reads studies from Orthanc over DICOMweb, runs the ONNX
# segmentation model, stores DICOM SEGs back) as a small, non-root image.
# Build from the repository root:
#   docker build -f deploy/docker/worker.Dockerfile -t cdss/ai-worker:0.1.0 .
# Debian slim rather than Alpine: onnxruntime-node ships glibc binaries only.

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

FROM node:24.22.3-bookworm-slim AS runtime
# Memory bounded and the same on every host (docs/guides/deploy.md, "Memory"): V8's heap capped at 1.5 GiB (uncapped
# it is sized from the host's RAM), leaving room in the chart's 4 GiB for what lives outside it (the ONNX session and
# the study's volumes: up to ~2 GiB in the inference bench). MALLOC_ARENA_MAX=2: glibc's default is 8 arenas per
# core, for onnxruntime's and libuv's threads.
ENV NODE_OPTIONS=--max-old-space-size=1536 \
    MALLOC_ARENA_MAX=2
ENV NODE_ENV=production \
    WORKER_HOST=0.0.0.0 \
    WORKER_PORT=8081
WORKDIR /app/examples/reference-server
COPY --from=build --chown=root:root /out ./
# The model (manifest + ONNX weights); mount another folder and set CDSS_MODEL_MANIFEST to serve your own.
COPY --from=build --chown=root:root /src/models /app/models
USER node
EXPOSE 8081
# No --start-period here: dockerfilelint 1.8 rejects it; deploy/compose.yaml sets start_period.
HEALTHCHECK --interval=15s --timeout=3s --retries=6 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.WORKER_PORT || 8081) + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
CMD ["node", "--enable-source-maps", "dist/worker-main.js"]
