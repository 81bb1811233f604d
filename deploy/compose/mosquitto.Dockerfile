# mosquitto for deploy/compose/compose.yaml, as the tests run it: Debian 12's
# package (2.0.11, with the dynamic security plugin where netroom.conf looks
# for it) and Debian's main /etc/mosquitto/mosquitto.conf, whose include_dir
# /etc/mosquitto/conf.d takes netroom.conf unchanged. Not built here (no
# Docker daemon on the machine this was written on).
#
# Built on a machine that reaches a Debian mirror; carry the image to the
# server with `docker save` / `docker load`. The package version is pinned:
# when Debian publishes a newer one (`apt-cache policy mosquitto`), the old
# one leaves the mirror and the build stops until MOSQUITTO_VERSION is bumped.
# arm64 hosts: netroom.conf's plugin path must say aarch64-linux-gnu.
FROM debian:12.11-slim

ARG MOSQUITTO_VERSION=2.0.11-1.2+deb12u2

# A fixed uid/gid (a system id, below 1000, so the package's adduser keeps
# it): the users' file on the host is chowned 883:883, mode 0600.
RUN groupadd --system --gid 883 mosquitto \
    && useradd --system --uid 883 --gid 883 --home-dir /var/empty/mosquitto \
       --shell /usr/sbin/nologin mosquitto \
    && apt-get update \
    && apt-get install -y --no-install-recommends "mosquitto=${MOSQUITTO_VERSION}" \
    && rm -rf /var/lib/apt/lists/* \
    && install -d -o mosquitto -g mosquitto -m 0755 /run/mosquitto \
    && sed -i 's|^log_dest file .*|log_dest stdout|' /etc/mosquitto/mosquitto.conf

# The only change to Debian's main file: the log goes to `docker compose logs`.
EXPOSE 1883 8883
CMD ["/usr/sbin/mosquitto", "-c", "/etc/mosquitto/mosquitto.conf"]
