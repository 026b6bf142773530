# The tp daemon: Node running the session, with the Go netstack library loaded through koffi.
# tp builds it from its package root; src/images/images.ts lists the files in the context.
# Production dependencies arrive staged in deps/ (src/images/deps.ts), so the build itself
# fetches nothing from npm.
ARG NODE_IMAGE=node:20-bookworm-slim
ARG GO_IMAGE=golang:1.26-bookworm

FROM ${GO_IMAGE} AS netstack
ARG TP_VERSION=dev
WORKDIR /src
COPY netstack/ ./
# c-shared needs cgo; the library links against the same Debian release as the runtime image.
# The Go modules arrive vendored (src/images/go-vendor.ts): the build downloads nothing.
RUN CGO_ENABLED=1 GOFLAGS=-mod=vendor go build -trimpath -buildmode=c-shared \
      -ldflags "-s -w -X main.version=${TP_VERSION}" \
      -o /out/libtpnetstack.so ./cmd/libtpnetstack

FROM ${NODE_IMAGE}
ARG TP_VERSION=dev
LABEL org.opencontainers.image.version=${TP_VERSION}
ENV NODE_ENV=production TP_NETSTACK_LIB=/usr/local/lib/tp/libtpnetstack.so
WORKDIR /app
COPY --from=netstack /out/libtpnetstack.so /usr/local/lib/tp/libtpnetstack.so
COPY deps/node_modules ./node_modules
COPY package.json ./
COPY dist/src ./dist/src
ENTRYPOINT ["node", "/app/dist/src/daemon/main.js"]
CMD ["run"]
