#!/usr/bin/env bash
# Install or upgrade the netroom agent from this offline bundle. No network.
#
#   sudo ./install.sh --site sq-1 --host pc-07 --network gov --role room \
#        --broker 10.1.2.3 --credentials sq-1.txt
#   sudo ./install.sh                 # upgrade: keep /etc/netroom/config.yaml
#   sudo ./install.sh --uninstall [--purge]
#   ./install.sh --update --config F --python PY   # run by the agent's self-update
#
# Creates a venv per install under $NETROOM_PREFIX (venv-<version>-<time>),
# points $NETROOM_PREFIX/venv at it (the previous one is kept for a rollback),
# puts the launcher (netroom-agent-launch) beside it, writes the config from
# agent.yaml.in, installs the systemd unit (or, without systemd, a SysV init
# script) and starts the agent. --update (docs/updates.md) only builds the new
# venv, tests it with the running agent's config, writes its trial and
# switches venv/ to it: the agent then restarts through the launcher. Locations can be moved
# with environment variables (tests install into a temp dir this way):
#   NETROOM_PREFIX=/opt/netroom  NETROOM_CONF_DIR=/etc/netroom
#   NETROOM_STATE_DIR=/var/lib/netroom  NETROOM_UNIT_DIR=/etc/systemd/system
#   NETROOM_INITD_DIR=/etc/init.d  NETROOM_RUN_DIR=/run  NETROOM_LOG_DIR=/var/log
# Exit codes: 0 done, 1 failed, 2 bad arguments.
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
PREFIX="${NETROOM_PREFIX:-/opt/netroom}"
CONF_DIR="${NETROOM_CONF_DIR:-/etc/netroom}"
STATE_DIR="${NETROOM_STATE_DIR:-/var/lib/netroom}"
UNIT_DIR="${NETROOM_UNIT_DIR:-/etc/systemd/system}"
INITD_DIR="${NETROOM_INITD_DIR:-/etc/init.d}"
RUN_DIR="${NETROOM_RUN_DIR:-/run}"
LOG_DIR="${NETROOM_LOG_DIR:-/var/log}"
ID_RE='^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$'
# A site id: the collector's sites tree and the protocol (netroom.protocol.SITE_ID_RE).
SITE_RE='^[a-z0-9][a-z0-9-]{0,63}$'
# An MQTT user: a PC's <site>/<host> (deploy/mosquitto/netroom_credentials.py).
USER_RE='^[A-Za-z0-9][A-Za-z0-9._-]{0,63}(/[A-Za-z0-9][A-Za-z0-9._-]{0,63})?$'

SITE="" NETWORK="" ROLE="" BROKER="" PORT="" HOST="" CA="" USERNAME="" PASSWORD_FILE=""
CREDENTIALS="" PASSWORD="" HAVE_PASSWORD=0
PY="python3" INIT="auto" START=1 UNINSTALL=0 PURGE=0 SYSTEM_PACKAGES=0
UPDATE=0 AGENT_CONFIG="" TRIAL_DEADLINE=600 UPDATE_KEYS=""

usage() {
    sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'
    cat <<'EOF'
Options:
  --site ID          site (squadron) id, as in the collector's `sites` tree
  --network NET      gov | internet
  --role ROLE        cadre | room | class | office
  --broker HOST      the MQTT broker's address (the collector server)
  --port N           broker port (default 1883, or 8883 with --ca)
  --host ID          this PC's id (default: its short hostname and a short id)
  --ca FILE          CA certificate of the broker: enables TLS
  --credentials F    the site's password file from the broker's
                     netroom_credentials.py ("<user>:<password>" lines): takes
                     this PC's line, user <site>/<host>; needs --host
  --username NAME    MQTT user, this PC's <site>/<host> (with --password-file)
  --password-file F  file whose first line is the MQTT password; - reads it
                     from standard input. Stored in agent.env, mode 0600.
                     Never give a password on the command line or in the
                     environment: both show in the process list.
  --python PY        Python >= 3.8 to build the venv with (default python3)
  --system-packages  use the distribution's psutil and PyYAML (python3-psutil,
                     python3-yaml) for a machine the bundle has no wheels for
                     (LoongArch, MIPS): the venv sees the system's packages
                     and takes only what they lack from the bundle
  --init KIND        systemd | sysv | none (default: what this system runs)
  --no-start         install and enable, but do not start the agent
  --uninstall        stop and remove the agent; --purge also removes the
                     config and the state dir (outbox, host id)
  --update           for the agent's self-update: install this bundle beside
                     the running version and put it on trial; needs --config
                     (the running agent's config) and --python
  --update-keys F    release public keys (`netroom release keygen`'s
                     release.pub, one per line) this PC trusts for
                     self-updates; default: the bundle's update-keys file
  --trial-deadline S with --update: seconds the new version has to report
                     before the launcher rolls it back (default 600)
EOF
}

die() { echo "install.sh: error: $*" >&2; exit 1; }
bad() { echo "install.sh: error: $*" >&2; exit 2; }
say() { echo "==> $*"; }

while [ $# -gt 0 ]; do
    case "$1" in
        --site|--network|--role|--broker|--port|--host|--ca|--username|--password-file|--credentials|--python|--init|--config|--trial-deadline|--update-keys)
            [ $# -ge 2 ] || bad "$1: needs a value"
            case "$1" in
                --site) SITE=$2 ;; --network) NETWORK=$2 ;; --role) ROLE=$2 ;;
                --broker) BROKER=$2 ;; --port) PORT=$2 ;; --host) HOST=$2 ;;
                --ca) CA=$2 ;; --username) USERNAME=$2 ;; --password-file) PASSWORD_FILE=$2 ;;
                --credentials) CREDENTIALS=$2 ;; --python) PY=$2 ;; --init) INIT=$2 ;;
                --config) AGENT_CONFIG=$2 ;; --trial-deadline) TRIAL_DEADLINE=$2 ;;
                --update-keys) UPDATE_KEYS=$2 ;;
            esac
            shift 2 ;;
        --no-start) START=0; shift ;;
        --system-packages) SYSTEM_PACKAGES=1; shift ;;
        --uninstall) UNINSTALL=1; shift ;;
        --update) UPDATE=1; shift ;;
        --purge) PURGE=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) bad "unknown option $1 (see --help)" ;;
    esac
done

# --- validate everything before touching the system --------------------------
check_id() {  # name value
    [[ $2 =~ $ID_RE ]] || bad "--$1: must be 1-64 letters, digits, '.', '_' or '-', got '$2'"
}
# agent.env is read as data by systemd (EnvironmentFile=) and netroom-agent.init
# alike: KEY='value' (single quotes: everything literal, $ and \ included), or
# KEY=value for a password holding a single quote, which is then taken as it
# is when it has no backslash and no quote or blank at its ends.
env_value() {  # password -> what follows NETROOM_MQTT_PASSWORD=, or fail
    local p=$1
    if [[ $p != *"'"* ]]; then printf "'%s'" "$p"; return 0; fi
    if [[ $p == *\\* || $p == [\"\']* || $p == *[\"\'] || $p == [[:space:]]* || $p == *[[:space:]] ]]; then
        return 1
    fi
    printf '%s' "$p"
}
take_password() {  # source-name password: check it, keep it in PASSWORD
    [ -n "$2" ] || bad "$1: the password is empty"
    [[ $2 != *[[:cntrl:]]* ]] || bad "$1: the password has a control character"
    env_value "$2" >/dev/null || bad "$1: this password cannot be stored in agent.env: with a single quote in it, it must not start or end with a quote or blank, nor hold a backslash"
    PASSWORD=$2 HAVE_PASSWORD=1
}
read_password_file() {  # file|- : the first line, from the file or standard input
    local line=""
    if [ "$1" = - ]; then
        IFS= read -r line || [ -n "$line" ] || bad "--password-file: nothing on standard input"
    else
        [ -f "$1" ] && [ -r "$1" ] || bad "--password-file: no such file '$1'"
        IFS= read -r line < "$1" || [ -n "$line" ] || bad "--password-file: '$1' is empty"
    fi
    take_password --password-file "${line%$'\r'}"
}
read_credentials() {  # file user: the password on the user's line ("<user>:<password>")
    local line=""
    [ -f "$1" ] && [ -r "$1" ] || bad "--credentials: no such file '$1'"
    while IFS= read -r line || [ -n "$line" ]; do
        line=${line%$'\r'}
        if [[ $line == "$2:"* ]]; then take_password --credentials "${line#"$2:"}"; return 0; fi
    done < "$1"
    bad "--credentials: no line for $2 in '$1'"
}
case "$INIT" in auto|systemd|sysv|none) ;; *) bad "--init: must be systemd, sysv or none, got '$INIT'" ;; esac

WRITE_CONFIG=0
if [ "$UPDATE" -eq 1 ]; then
    [ -z "$SITE$NETWORK$ROLE$BROKER$CREDENTIALS$PASSWORD_FILE$USERNAME$HOST$CA" ] && [ "$UNINSTALL" -eq 0 ] \
        || bad "--update: takes only --config, --python and --trial-deadline"
    [ -n "$AGENT_CONFIG" ] && [ -f "$AGENT_CONFIG" ] || bad "--config: the running agent's config file, got '$AGENT_CONFIG'"
    [[ $TRIAL_DEADLINE =~ ^[0-9]{2,6}$ ]] || bad "--trial-deadline: must be seconds, got '$TRIAL_DEADLINE'"
    [ -L "$PREFIX/venv" ] && [ -x "$PREFIX/netroom-agent-launch" ] \
        || die "$PREFIX: no install.sh install with its launcher to update (run install.sh once by hand)"
    [ ! -f "$PREFIX/update/trial" ] || die "$PREFIX: version $(sed -n 's/^version=//p' "$PREFIX/update/trial") is on trial: wait for it to end"
elif [ -n "$AGENT_CONFIG" ]; then
    bad "--config: only with --update (the config installed is $CONF_DIR/config.yaml)"
fi
if [ "$UNINSTALL" -eq 0 ] && [ "$UPDATE" -eq 0 ]; then
    if [ -n "$SITE$NETWORK$ROLE$BROKER" ]; then
        for opt in site network role broker; do
            var=$(echo "$opt" | tr '[:lower:]' '[:upper:]')
            [ -n "${!var}" ] || bad "--$opt: required with --site/--network/--role/--broker"
        done
        [[ $SITE =~ $SITE_RE ]] || bad "--site: must be 1-64 of a-z, 0-9 and '-' (as in the collector's sites tree), got '$SITE'"
        case "$NETWORK" in gov|internet) ;; *) bad "--network: must be gov or internet, got '$NETWORK'" ;; esac
        case "$ROLE" in cadre|room|class|office) ;; *) bad "--role: must be cadre, room, class or office, got '$ROLE'" ;; esac
        [[ $BROKER =~ ^[A-Za-z0-9][A-Za-z0-9.:_-]*$ ]] || bad "--broker: not a host name or address: '$BROKER'"
        if [ -n "$PORT" ]; then
            [[ $PORT =~ ^[0-9]{1,5}$ ]] && [ "$PORT" -ge 1 ] && [ "$PORT" -le 65535 ] \
                || bad "--port: must be 1-65535, got '$PORT'"
        fi
        [ -z "$HOST" ] || check_id host "$HOST"
        [ -z "$USERNAME" ] || [[ $USERNAME =~ $USER_RE ]] \
            || bad "--username: must be <site>/<host> (or a plain id), got '$USERNAME'"
        [ -z "$CA" ] || [ -f "$CA" ] || bad "--ca: no such file '$CA'"
        if [ -z "$UPDATE_KEYS" ] && [ -f "$HERE/update-keys" ]; then UPDATE_KEYS="$HERE/update-keys"; fi
        if [ -n "$UPDATE_KEYS" ]; then
            [ -f "$UPDATE_KEYS" ] || bad "--update-keys: no such file '$UPDATE_KEYS'"
            while IFS= read -r key || [ -n "$key" ]; do
                key=${key%$'\r'}
                [ -z "$key" ] || [[ $key =~ ^[A-Za-z0-9+/]{43}=$ ]] \
                    || bad "--update-keys: '$UPDATE_KEYS' holds a line that is not a release public key: '$key'"
            done < "$UPDATE_KEYS"
        fi
        WRITE_CONFIG=1
    elif [ ! -f "$CONF_DIR/config.yaml" ]; then
        bad "no $CONF_DIR/config.yaml to keep: give --site, --network, --role and --broker"
    elif [ -n "$CREDENTIALS$USERNAME$HOST$UPDATE_KEYS" ]; then
        bad "--credentials, --username, --host and --update-keys go with --site, --network, --role and --broker (alone, --password-file changes the password)"
    fi
    # Passwords: from a file or standard input only, read before anything is touched.
    if [ -n "${NETROOM_MQTT_PASSWORD+set}" ]; then
        bad "NETROOM_MQTT_PASSWORD: not read from the environment any more (it shows in the process list, e.g. of sudo): use --credentials FILE or --password-file FILE|-"
    fi
    if [ -n "$CREDENTIALS" ] && [ -n "$PASSWORD_FILE" ]; then
        bad "--credentials: give it or --password-file, not both"
    fi
    if [ -n "$CREDENTIALS" ]; then
        [ -n "$HOST" ] || bad "--credentials: needs --host (the PC's line is <site>/<host>)"
        [ -z "$USERNAME" ] || [ "$USERNAME" = "$SITE/$HOST" ] \
            || bad "--username: must be $SITE/$HOST with --credentials, got '$USERNAME'"
        USERNAME="$SITE/$HOST"
        read_credentials "$CREDENTIALS" "$USERNAME"
    elif [ -n "$PASSWORD_FILE" ]; then
        read_password_file "$PASSWORD_FILE"
    fi
    if [ "$INIT" = auto ]; then
        if [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then INIT=systemd
        elif [ -d "$INITD_DIR" ]; then INIT=sysv
        else INIT=none; fi
    fi
fi

# --- service control -------------------------------------------------------------
stop_agent() {
    if [ -f "$UNIT_DIR/netroom-agent.service" ] && [ -d /run/systemd/system ]; then
        systemctl stop netroom-agent 2>/dev/null || true
    fi
    if [ -x "$INITD_DIR/netroom-agent" ]; then
        "$INITD_DIR/netroom-agent" stop || true
    fi
}

boot_links() {  # add|remove: start at boot (only for the system's own init.d)
    [ "$INITD_DIR" = /etc/init.d ] || return 0
    if command -v update-rc.d >/dev/null; then
        if [ "$1" = add ]; then update-rc.d netroom-agent defaults; else update-rc.d -f netroom-agent remove; fi
    elif command -v chkconfig >/dev/null; then
        if [ "$1" = add ]; then chkconfig --add netroom-agent; else chkconfig --del netroom-agent; fi
    fi >/dev/null 2>&1 || true
}

if [ "$UNINSTALL" -eq 1 ]; then
    stop_agent
    if [ -f "$UNIT_DIR/netroom-agent.service" ]; then
        if [ -d /run/systemd/system ]; then systemctl disable netroom-agent 2>/dev/null || true; fi
        rm -f "$UNIT_DIR/netroom-agent.service"
        if [ -d /run/systemd/system ]; then systemctl daemon-reload; fi
    fi
    if [ -f "$INITD_DIR/netroom-agent" ]; then
        boot_links remove
        rm -f "$INITD_DIR/netroom-agent"
    fi
    rm -rf "$PREFIX"
    if [ "$PURGE" -eq 1 ]; then rm -rf "$CONF_DIR" "$STATE_DIR"; fi
    say "netroom agent removed"
    exit 0
fi

# --- Python and the venv ---------------------------------------------------------
command -v "$PY" >/dev/null || die "$PY not found; install Python >= 3.8 (Kylin/UOS: the python3 package) or give --python"
"$PY" -c 'import sys; sys.exit(sys.version_info < (3, 8))' \
    || die "$("$PY" -V 2>&1) is too old: netroom needs Python >= 3.8 (see docs/operations.md, Linux PCs)"
VERSION=$(cat "$HERE/VERSION")
# pip itself comes from the bundle, run straight from its wheel: the distro's
# ensurepip (Debian/UOS package python3-venv) is often not installed.
PIP_WHEEL=""
for w in $(ls -1 "$HERE"/wheels/pip-*.whl 2>/dev/null | sort -rV); do
    if "$PY" "$w/pip" --version >/dev/null 2>&1; then PIP_WHEEL=$w; break; fi
done
[ -n "$PIP_WHEEL" ] || die "no pip wheel in $HERE/wheels works with $("$PY" -V 2>&1)"
VENV_OPTS=(--without-pip)
if [ "$SYSTEM_PACKAGES" -eq 0 ] && grep -qs '^include-system-site-packages = true' "$PREFIX/venv/pyvenv.cfg"; then
    SYSTEM_PACKAGES=1  # an upgrade keeps the way the installed agent was set up
    say "the installed agent uses the system's psutil and PyYAML: so will this one"
fi
if [ "$SYSTEM_PACKAGES" -eq 1 ]; then
    # psutil and PyYAML compile C; where the bundle has no wheels for this
    # machine the distribution's own builds serve (pure-Python paho-mqtt and
    # speedtest-cli come from the bundle whatever the machine).
    missing=$("$PY" -c 'import importlib.util as u; print(" ".join(p for m, p in (("psutil", "python3-psutil"), ("yaml", "python3-yaml")) if u.find_spec(m) is None))')
    [ -z "$missing" ] || die "--system-packages: $("$PY" -V 2>&1) has no $missing; install the distribution's package (apt-get install $missing, or yum/dnf) or use a bundle with wheels for this machine"
    VENV_OPTS+=(--system-site-packages)
fi

mkdir -p "$PREFIX"
NEW="$PREFIX/venv-$VERSION-$(date +%Y%m%d%H%M%S)"
say "creating $NEW with $("$PY" -V 2>&1)"
"$PY" -m venv "${VENV_OPTS[@]}" "$NEW" || { rm -rf "$NEW"; die "python3 -m venv failed (is the venv module installed? is the disk full?)"; }
bundled() {  # pip install from the bundle only; PIP_CONFIG_FILE=/dev/null: a
    # site pip.conf must not add an index or proxy.
    PIP_CONFIG_FILE=/dev/null "$NEW/bin/python" "$PIP_WHEEL/pip" install --no-index \
        --find-links "$HERE/wheels" --disable-pip-version-check --no-cache-dir --quiet "$@"
}
# Over the system's packages, this bundle's netroom and pip go into the venv
# even if the system has some (an older netroom must not stand in for it).
if ! { [ "$SYSTEM_PACKAGES" -eq 0 ] || bundled --ignore-installed --no-deps pip netroom; } ||
        ! bundled pip netroom; then
    rm -rf "$NEW"
    die "pip could not install from $HERE/wheels: no wheel for this machine ($(uname -m), $("$PY" -V 2>&1))? With the distribution's python3-psutil and python3-yaml installed, --system-packages needs none (docs/operations.md)"
fi
"$NEW/bin/netroom-agent" --version >/dev/null || { rm -rf "$NEW"; die "the new venv does not run"; }

switch_venv() {  # point venv/ at $NEW; keep it and the one before it (rollback)
    OLD=$(readlink "$PREFIX/venv" 2>/dev/null || true)
    ln -sfn "$NEW" "$PREFIX/venv.tmp" && mv -Tf "$PREFIX/venv.tmp" "$PREFIX/venv" || return 1
    for d in "$PREFIX"/venv-*; do
        if [ "$d" != "$NEW" ] && [ "$d" != "$OLD" ]; then rm -rf "$d"; fi
    done
}

if [ "$UPDATE" -eq 1 ]; then
    got=$("$NEW/bin/netroom-agent" --version 2>&1)
    [ "$got" = "$VERSION" ] || { rm -rf "$NEW"; die "the new venv runs version '$got', the bundle says $VERSION"; }
    if ! out=$(cd / && "$NEW/bin/netroom-agent" --config "$AGENT_CONFIG" --once --print 2>&1 >/dev/null); then
        rm -rf "$NEW"
        die "version $VERSION does not run with $AGENT_CONFIG: $(printf '%s' "$out" | tail -n 1)"
    fi
    current=$(readlink -f "$PREFIX/venv")
    current_version=$("$PREFIX/venv/bin/netroom-agent" --version 2>/dev/null || echo unknown)
    # The trial first, then the switch: a power cut between the two leaves the
    # old version running and a trial the launcher ends at once (no venv change).
    mkdir -p "$PREFIX/update"
    rm -f "$PREFIX/update/trial.ok" "$PREFIX/update/trial.late"
    if ! printf '%s\n' "version=$VERSION" "previous=$current" "previous_version=$current_version" \
            "deadline_s=$TRIAL_DEADLINE" "starts=0" > "$PREFIX/update/trial.tmp" \
            || ! mv -f "$PREFIX/update/trial.tmp" "$PREFIX/update/trial"; then
        rm -f "$PREFIX/update/trial.tmp"
        rm -rf "$NEW"
        die "cannot write $PREFIX/update/trial (is the disk full?): the running version stays"
    fi
    if ! switch_venv; then
        rm -f "$PREFIX/update/trial" "$PREFIX/venv.tmp"
        rm -rf "$NEW"
        die "cannot point $PREFIX/venv at $NEW: the running version stays"
    fi
    echo "staged $VERSION in $NEW (on trial for $TRIAL_DEADLINE s; previous $current_version)"
    exit 0
fi

# --- config ------------------------------------------------------------------------
mkdir -p "$CONF_DIR" "$STATE_DIR"
chmod 0755 "$CONF_DIR"
chmod 0750 "$STATE_DIR"
install -m 0644 "$HERE/config.example.yaml" "$CONF_DIR/config.example.yaml"
if [ "$WRITE_CONFIG" -eq 1 ]; then
    mqtt_extra="" agent_extra=""
    if [ -n "$USERNAME" ]; then mqtt_extra+="  username: '$USERNAME'"$'\n'; fi
    if [ -n "$CA" ]; then
        install -m 0644 "$CA" "$CONF_DIR/ca.crt"
        mqtt_extra+="  tls:"$'\n'"    ca: '$CONF_DIR/ca.crt'"$'\n'
        PORT=${PORT:-8883}
    fi
    if [ -n "$HOST" ]; then agent_extra+="  host: '$HOST'"$'\n'; fi
    if [ -n "$UPDATE_KEYS" ]; then
        agent_extra+="  update_keys:"$'\n'
        while IFS= read -r key || [ -n "$key" ]; do
            key=${key%$'\r'}
            if [ -n "$key" ]; then agent_extra+="    - '$key'"$'\n'; fi
        done < "$UPDATE_KEYS"
    fi
    text=$(cat "$HERE/agent.yaml.in")
    text=${text//@BROKER@/$BROKER}
    text=${text//@PORT@/${PORT:-1883}}
    text=${text//@SITE@/$SITE}
    text=${text//@NETWORK@/$NETWORK}
    text=${text//@ROLE@/$ROLE}
    text=${text//@STATE_DIR@/$STATE_DIR}
    text=${text//@MQTT_EXTRA@$'\n'/$mqtt_extra}
    text=${text//@AGENT_EXTRA@$'\n'/$agent_extra}
    if [ -f "$CONF_DIR/config.yaml" ]; then cp -p "$CONF_DIR/config.yaml" "$CONF_DIR/config.yaml.bak"; fi
    (umask 077 && printf '%s\n' "$text" > "$CONF_DIR/config.yaml.tmp")
    mv "$CONF_DIR/config.yaml.tmp" "$CONF_DIR/config.yaml"
    say "wrote $CONF_DIR/config.yaml (site $SITE, $NETWORK, $ROLE, broker $BROKER)"
else
    say "kept $CONF_DIR/config.yaml"
fi
if [ "$HAVE_PASSWORD" -eq 1 ]; then
    # printf is a bash builtin: the password never shows in the process list.
    (umask 077 && printf '# netroom agent secrets, read as data (netroom-agent.init, systemd).\nNETROOM_MQTT_PASSWORD=%s\n' \
        "$(env_value "$PASSWORD")" > "$CONF_DIR/agent.env.tmp")
    mv "$CONF_DIR/agent.env.tmp" "$CONF_DIR/agent.env"
    say "wrote $CONF_DIR/agent.env (mode 0600)"
fi

# One round printed, not sent: proves config, Python and psutil work here.
if ! out=$(cd / && "$NEW/bin/netroom-agent" --config "$CONF_DIR/config.yaml" --once --print 2>&1 >/dev/null); then
    rm -rf "$NEW"
    die "the agent does not run with $CONF_DIR/config.yaml: $out"
fi

# --- switch over -----------------------------------------------------------------
stop_agent
switch_venv || die "cannot point $PREFIX/venv at $NEW (is the disk full?)"
# What a hand install puts in place wins over an update on trial.
rm -f "$PREFIX/update/trial" "$PREFIX/update/trial.ok" "$PREFIX/update/trial.late"
install -m 0755 "$HERE/netroom-agent-launch" "$PREFIX/netroom-agent-launch"
mkdir -p "$PREFIX/docs"
install -m 0644 "$HERE/operations.md" "$PREFIX/docs/operations.md"
say "installed netroom $VERSION in $PREFIX/venv"

subst() {  # the default locations in a service file -> the ones used here
    sed -e "s|/opt/netroom|$PREFIX|g" -e "s|/etc/netroom|$CONF_DIR|g" \
        -e "s|/var/lib/netroom|$STATE_DIR|g" -e "s|@RUN_DIR@|$RUN_DIR|g" -e "s|@LOG_DIR@|$LOG_DIR|g" "$1"
}
case "$INIT" in
    systemd)
        mkdir -p "$UNIT_DIR"
        subst "$HERE/netroom-agent.service" > "$UNIT_DIR/netroom-agent.service"
        if [ "$STATE_DIR" != /var/lib/netroom ]; then  # StateDirectory= only covers /var/lib
            sed -i "s|^StateDirectory=.*|ReadWritePaths=$STATE_DIR|" "$UNIT_DIR/netroom-agent.service"
        fi
        systemctl daemon-reload
        systemctl enable netroom-agent >/dev/null
        if [ "$START" -eq 1 ]; then systemctl restart netroom-agent; fi
        say "systemd unit netroom-agent: $(systemctl is-active netroom-agent || true)"
        ;;
    sysv)
        mkdir -p "$INITD_DIR"
        subst "$HERE/netroom-agent.init" > "$INITD_DIR/netroom-agent"
        chmod 0755 "$INITD_DIR/netroom-agent"
        boot_links add
        if [ "$START" -eq 1 ]; then "$INITD_DIR/netroom-agent" start; fi
        say "init script $INITD_DIR/netroom-agent installed"
        ;;
    none)
        say "no service installed; run: $PREFIX/netroom-agent-launch --config $CONF_DIR/config.yaml"
        ;;
esac
