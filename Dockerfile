# jotgate container image.
#
#   docker build -t jotgate .
#   docker run -p 8080:8080 -v "$PWD/gateway.yaml:/etc/jotgate/gateway.yaml:ro" jotgate
#
# The config is mounted at /etc/jotgate/gateway.yaml; relative key and users
# file paths in it resolve against /etc/jotgate, so mount the keys next to it.
# The HEALTHCHECK asks the admin listener, so keep `admin.port: 9090` (and a
# host reachable from inside the container, the default 127.0.0.1 is).

# ---- build: compile TypeScript with the dev dependencies, then drop them ----
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci
COPY tsconfig.json ./
COPY src ./src
RUN npm run build && npm prune --omit=dev

# ---- runtime: only what `jotgate start` needs, as the unprivileged user ----
FROM node:20-bookworm-slim AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY config ./config
# The image's own `node` user (uid 1000); nothing in /app is writable by it.
USER node
EXPOSE 8080 9090
# Slim images have no curl: node itself asks the admin listener.
HEALTHCHECK --interval=15s --timeout=5s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:9090/healthz', { signal: AbortSignal.timeout(4000) }).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# node runs as PID 1 and handles SIGTERM (drain, exit 0) and SIGHUP (reload) itself.
ENTRYPOINT ["node", "dist/cli/main.js", "start", "--config", "/etc/jotgate/gateway.yaml"]
