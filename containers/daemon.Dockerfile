# The tp daemon: Node running the session, with the Go netstack library loaded through koffi.
# tp builds it from its package root; src/images/recipes.ts chooses the files in the context:
# the modules dist/src/daemon/main.js imports, the npm packages they use, staged in deps/
# (src/images/deps.ts) so the build itself fetches nothing from npm, and the Go sources.
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

# `tp curl` runs curl in the daemon's network namespace. The Node image has none and the build
# can download nothing, so take Debian's curl from the Go image (same release) with the
# libraries its ldd closure needs.
FROM ${GO_IMAGE} AS curl-closure
RUN mkdir -p /out/bin /out/lib \
 && cp /usr/bin/curl /out/bin/curl \
 && ldd /usr/bin/curl | awk '$2 == "=>" && $3 ~ /^\// { print $3 }' \
      | xargs -r cp -L -t /out/lib \
 && cp /etc/ssl/certs/ca-certificates.crt /out/ca-certificates.crt

# Keeps only what the Node image lacks, so curl shares the rest with it, and checks that the
# result runs there. The wrapper gives curl its libraries without changing Node's.
FROM ${NODE_IMAGE} AS curl
COPY --from=curl-closure /out /closure
RUN set -e; dir=/out/usr/local/lib/tp-curl; mkdir -p "$dir/bin" "$dir/lib" /out/usr/local/bin \
 && ldconfig -p | awk 'NR > 1 { print $1 }' >/tmp/present \
 && for lib in /closure/lib/*; do \
      grep -qxF "${lib##*/}" /tmp/present || cp "$lib" "$dir/lib/"; \
    done \
 && cp /closure/bin/curl "$dir/bin/curl" \
 && printf '#!/bin/sh\nLD_LIBRARY_PATH=%s/lib exec %s/bin/curl "$@"\n' "${dir#/out}" "${dir#/out}" \
      >/out/usr/local/bin/curl \
 && chmod 0755 /out/usr/local/bin/curl \
 && if [ ! -e /etc/ssl/certs/ca-certificates.crt ]; then \
      mkdir -p /out/etc/ssl/certs && cp /closure/ca-certificates.crt /out/etc/ssl/certs/; \
    fi \
 && ! LD_LIBRARY_PATH="$dir/lib" ldd "$dir/bin/curl" | grep 'not found' \
 && LD_LIBRARY_PATH="$dir/lib" "$dir/bin/curl" --version >/dev/null

FROM ${NODE_IMAGE}
ARG TP_VERSION=dev
LABEL org.opencontainers.image.version=${TP_VERSION}
ENV NODE_ENV=production TP_NETSTACK_LIB=/usr/local/lib/tp/libtpnetstack.so
WORKDIR /app
COPY --from=netstack /out/libtpnetstack.so /usr/local/lib/tp/libtpnetstack.so
COPY --from=curl /out/ /
COPY deps/node_modules ./node_modules
COPY package.json ./
COPY dist/src ./dist/src
ENTRYPOINT ["node", "/app/dist/src/daemon/main.js"]
CMD ["run"]
