# The tp daemon: Node running the session, with the Go netstack library loaded through koffi.
# Built from tp's package root (see src/images/images.ts for the files in the context).
ARG NODE_IMAGE=node:20-bookworm-slim
ARG GO_IMAGE=golang:1.26-bookworm

FROM ${GO_IMAGE} AS netstack
ARG TP_VERSION=dev
WORKDIR /src
COPY netstack/ ./
# c-shared needs cgo; the library is linked against the same Debian release as the runtime.
RUN CGO_ENABLED=1 go build -trimpath -buildmode=c-shared \
      -ldflags "-s -w -X main.version=${TP_VERSION}" \
      -o /out/libtpnetstack.so ./cmd/libtpnetstack

FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# koffi ships prebuilt binaries, so no install script (and no compiler) is needed.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force

FROM ${NODE_IMAGE}
ARG TP_VERSION=dev
ENV NODE_ENV=production TP_NETSTACK_LIB=/usr/local/lib/tp/libtpnetstack.so
WORKDIR /app
COPY --from=netstack /out/libtpnetstack.so /usr/local/lib/tp/libtpnetstack.so
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY dist/src ./dist/src
ENTRYPOINT ["node", "/app/dist/src/daemon/main.js"]
CMD ["run"]
