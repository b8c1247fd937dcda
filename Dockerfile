# syntax=docker/dockerfile:1

# The same base in both stages: native modules built or fetched for the builder's Node ABI and
# glibc must load unchanged in the runtime stage.
FROM node:24-bookworm-slim AS builder
WORKDIR /app

# package.json's allowScripts (which dependencies may run install scripts) is read only by
# npm >= 11.16; an older bundled npm would ignore it and run every script, so pin the npm the
# lockfile is maintained with.
ARG NPM_VERSION=11.19.1
RUN npm install -g "npm@${NPM_VERSION}" && npm --version

# Manifests alone first, so the dependency layer is reused until they change. package.json is
# needed here, not just the lockfile: npm ci checks its overrides and allowScripts against it.
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund

# nest-cli.jso[n] is a glob so the COPY does not fail while the project has no such file.
COPY tsconfig*.json nest-cli.jso[n] ./
COPY src ./src
COPY libs ./libs
COPY config ./config
RUN npm run build && npm prune --omit=dev --no-audit --no-fund


FROM node:24-bookworm-slim AS runtime
WORKDIR /app

# HOST: leo binds 127.0.0.1 by default, unreachable from outside the container.
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=3000

# Left owned by root: the service user can read its code but not rewrite it. Production needs
# no writable directory (no embedded Postgres/Redis, no generated dev secret).
COPY --from=builder /app/package.json ./package.json
COPY --from=builder /app/node_modules ./node_modules
COPY --from=builder /app/dist ./dist
COPY --from=builder /app/config ./config

USER node

EXPOSE 3000

# Liveness only: /health/ready would mark the container unhealthy (and get it restarted) when
# Postgres or Redis is down, which a restart cannot fix. Node's own fetch, as slim has no curl.
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||3000)+'/health/live').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]

# leo drains in-flight work on SIGTERM (see src/main.ts). Node runs as PID 1 directly, not under
# npm or a shell, so the signal reaches it.
STOPSIGNAL SIGTERM
CMD ["node", "--enable-source-maps", "dist/src/main.js"]
