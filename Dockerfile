# syntax=docker/dockerfile:1
# restless-ingest: a static binary on a small non-root image.
#
#   docker build -t restless-ingest .
#   docker run --rm -p 9464:9464 -v $PWD/configs:/etc/restless-ingest:ro restless-ingest run -c /etc/restless-ingest/emulator-nats.yaml

FROM golang:1.26-alpine AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
ARG COMMIT=unknown
RUN CGO_ENABLED=0 GOFLAGS=-buildvcs=false go build -trimpath \
      -ldflags "-s -w -X main.version=${VERSION} -X main.commit=${COMMIT}" \
      -o /out/ingest ./cmd/ingest

# Alpine rather than scratch: its busybox wget serves the healthchecks.
FROM alpine:3.20
RUN addgroup -S -g 10001 ingest && adduser -S -u 10001 -G ingest -h /home/ingest ingest \
 && mkdir -p /data/checkpoints /etc/restless-ingest && chown -R ingest:ingest /data
COPY --from=build /out/ingest /usr/local/bin/ingest
COPY configs/ /etc/restless-ingest/
USER 10001:10001
WORKDIR /data
EXPOSE 9464 8787
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD wget -q -O /dev/null http://127.0.0.1:9464/healthz || exit 1
ENTRYPOINT ["/usr/local/bin/ingest"]
CMD ["demo", "--http-addr", "0.0.0.0:9464"]
