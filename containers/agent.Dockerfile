# The in-cluster image: tp-manager and the engagements' agent, one program with its roles.
# The context holds only the modules dist/agent/main.js imports (src/images/recipes.ts) and
# the npm packages they use (tar-stream, for the agent's tars of mounts), staged in deps/
# (src/images/deps.ts) so the build itself fetches nothing from npm.
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
