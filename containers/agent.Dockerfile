# The in-cluster image: tp-manager and the tp-agent sidecar, one program with two roles.
# Production dependencies arrive staged in deps/ (src/images/deps.ts).
ARG NODE_IMAGE=node:20-bookworm-slim

FROM ${NODE_IMAGE}
ARG TP_VERSION=dev
LABEL org.opencontainers.image.version=${TP_VERSION}
ENV NODE_ENV=production
WORKDIR /app
COPY deps/node_modules ./node_modules
COPY package.json ./
COPY dist ./dist
ENTRYPOINT ["node", "/app/dist/agent/main.js"]
CMD ["manager"]
