# The mesh-server image. Build it with scripts/build-server-image, which makes the Debian
# base (deploy/build-base-images: mmdebstrap + docker import, no registry), builds the
# binary on the host with cargo, and stages it in deploy/stage/ for this file.
#
# Why the binary comes from the host: no container registry is reachable where mesh is built
# and tested (CI included), so there is no rust image to build in, and a toolchain cannot
# be downloaded inside a build stage (rustup's servers are not reachable either). The host's
# cargo, on the same Debian release as the base, builds it; the first stage here only checks
# that it runs on the base and arranges it (decision 018).
#
# The runtime: a non-root user (uid 10002) owns only its private data directory; the health
# check asks /readyz, which also says 503 while the node drains after SIGTERM.

ARG BASE=mesh-base/debian:bookworm

# Stage 1: check the staged binary on the base (right architecture, its libraries there) and
# give it its final mode.
FROM ${BASE} AS check
COPY deploy/stage/mesh-server /stage/mesh-server
RUN chmod 0755 /stage/mesh-server \
 && /stage/mesh-server --version \
 && /stage/mesh-server --help >/dev/null

# Stage 2: the runtime.
FROM ${BASE}
RUN echo 'mesh:x:10002:10002:mesh-server:/var/lib/mesh:/usr/sbin/nologin' >> /etc/passwd \
 && echo 'mesh:x:10002:' >> /etc/group \
 && echo 'mesh:*:19000:0:99999:7:::' >> /etc/shadow \
 && mkdir -p /var/lib/mesh \
 && chown 10002:10002 /var/lib/mesh \
 && chmod 0700 /var/lib/mesh
COPY --from=check /stage/mesh-server /usr/local/bin/mesh-server
USER 10002:10002
WORKDIR /var/lib/mesh
# Two malloc arenas (glibc makes up to eight per core): after a burst of joins, idle
# connections' memory stays together instead of spread over arenas with holes between
# (5,000 idle connections: 4.0 KiB each instead of 4.2; docs/benchmarks.md).
ENV MESH_LISTEN=0.0.0.0:7420 \
    MESH_DATA_DIR=/var/lib/mesh \
    MESH_LOG_FORMAT=json \
    MALLOC_ARENA_MAX=2
EXPOSE 7420
# Docker's default 10 s between SIGTERM and SIGKILL leaves room for the 3 s drain grace
# and the rooms' last writes; compose.yaml gives 30 s.
STOPSIGNAL SIGTERM
# (It asks port 7420: change it here too if MESH_LISTEN moves the server.)
HEALTHCHECK --interval=2s --timeout=2s --start-period=10s --retries=3 \
  CMD curl -fsS -o /dev/null http://127.0.0.1:7420/readyz || exit 1
ENTRYPOINT ["/usr/local/bin/mesh-server"]
