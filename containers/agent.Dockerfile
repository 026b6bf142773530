# The in-cluster image: tp-manager and the tp-agent sidecar, one program with two roles.
# The context holds only the modules dist/agent/main.js imports (src/images/recipes.ts). They
# use only Node's built-ins, so there is no node_modules; should they import a package, tp
# refuses to build until this file copies deps/node_modules as the daemon's does.
ARG NODE_IMAGE=node:20-bookworm-slim

FROM ${NODE_IMAGE}
ARG TP_VERSION=dev
LABEL org.opencontainers.image.version=${TP_VERSION}
ENV NODE_ENV=production
WORKDIR /app
COPY package.json ./
COPY dist ./dist
ENTRYPOINT ["node", "/app/dist/agent/main.js"]
CMD ["manager"]
