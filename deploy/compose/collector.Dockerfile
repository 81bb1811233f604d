# netroom-collector for deploy/compose/compose.yaml, built from this checkout
# (context: the repository root). Not built here (no Docker daemon on the
# machine this was written on). Build on a machine that reaches a package
# index, then carry the image with `docker save` / `docker load`.
FROM python:3.11.11-slim-bookworm

# An unprivileged user, as the systemd unit's `netroom`; the spool volume
# takes the ownership of the directory made here.
RUN useradd --system --uid 10001 --home-dir /var/lib/netroom \
       --shell /usr/sbin/nologin netroom \
    && install -d -o netroom -g netroom -m 0750 /var/lib/netroom /var/lib/netroom/spool

# What setup.cfg packages (netroom, agent, collector, dashboards) and reads.
WORKDIR /src
COPY pyproject.toml setup.cfg README.md ./
COPY netroom ./netroom
COPY agent ./agent
COPY collector ./collector
COPY dashboards ./dashboards
RUN pip install --no-cache-dir '.[collector]' \
    && rm -rf /src

USER netroom
WORKDIR /var/lib/netroom
# The config is mounted read-only by compose.yaml (collector.yaml, derived
# from config.yaml); secrets come from NETROOM_* in the environment.
CMD ["netroom-collector", "--config", "/etc/netroom/config.yaml"]
