# Portico container image: a static binary on distroless, run as non-root.
#
#   docker build -t portico .
#   docker run --rm -p 8080:8080 portico                    # the quick start
#   docker run --rm -p 8080:8080 -v "$PWD/portico.yaml:/etc/portico/portico.yaml:ro" portico
#
# Build arguments VERSION, COMMIT and DATE are recorded in `portico version`.

FROM golang:1.26.8 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
ARG COMMIT=
ARG DATE=
RUN CGO_ENABLED=0 go build -trimpath -buildvcs=false \
      -ldflags "-s -w -X github.com/portico-gw/portico/internal/buildinfo.version=${VERSION} -X github.com/portico-gw/portico/internal/buildinfo.commit=${COMMIT} -X github.com/portico-gw/portico/internal/buildinfo.date=${DATE}" \
      -o /out/portico ./cmd/portico

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/portico /usr/local/bin/portico
COPY examples/quickstart.yaml /etc/portico/portico.yaml
USER nonroot:nonroot
# 8080: client traffic (server.listen of the quick start); 9901: admin API.
EXPOSE 8080 9901
# `portico health` GETs the admin /healthz (at $PORTICO_ADMIN when set, else
# 127.0.0.1:9901): the image has no shell or curl.
HEALTHCHECK --interval=10s --timeout=5s --start-period=5s --retries=3 \
  CMD ["/usr/local/bin/portico", "health"]
ENTRYPOINT ["/usr/local/bin/portico"]
CMD ["run", "--config", "/etc/portico/portico.yaml"]
