"""Real mosquitto and influxd servers for tests, on loopback only.

Plain module (no pytest import) so benchmarks and scripts can reuse it.
Every server binds 127.0.0.1 on a free port, keeps its config, data and logs
in one temp dir, and can be stopped (SIGTERM), killed (SIGKILL) and started
again on the same port with the same data. All waits are bounded.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any, Callable, Mapping, Sequence, TypeVar

MOSQUITTO_BIN = "/usr/sbin/mosquitto"
INFLUXD_BIN = "/usr/bin/influxd"
INSTALL_HINT = (
    "install it with `bash scripts/setup.sh` (Debian 12: "
    "apt-get install -y --no-install-recommends mosquitto influxdb)"
)
# Never route our loopback HTTP through an http_proxy from the environment.
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
_LIVE: set[_Server] = set()
_S = TypeVar("_S", bound="_Server")


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _tail(path: Path, nbytes: int = 4000) -> str:
    """Last `nbytes` bytes of a file as text ('' if missing)."""
    try:
        data = path.read_bytes()
    except OSError:
        return ""
    return data[-nbytes:].decode("utf-8", "replace")


def password_file(path: Path, passwords: dict[str, str]) -> Path:
    """A mosquitto password file at ``path`` with these users (mosquitto_passwd)."""
    for i, (user, password) in enumerate(passwords.items()):
        subprocess.run(["mosquitto_passwd", *(["-c"] if i == 0 else []), "-b", str(path),
                        user, password], check=True, capture_output=True, timeout=30)
    return path


def self_signed(tmp: Path, name: str = "broker.example") -> tuple[Path, Path]:
    """(certificate, key) for ``name``, self-signed by the openssl command."""
    cert, key = tmp / "cert.pem", tmp / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", f"/CN={name}", "-addext", f"subjectAltName=DNS:{name}",
                    "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)
    return cert, key


def wait_until(pred: Callable[[], bool], timeout: float = 10.0, interval: float = 0.02) -> bool:
    """Poll `pred` every `interval` s for at most `timeout` s; True once it holds."""
    deadline = time.monotonic() + timeout
    while True:
        if pred():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


class _Server:
    """Common process handling; subclasses define config and readiness."""

    name = "server"
    binary = ""

    def __init__(self, workdir: str | os.PathLike[str] | None = None,
                 extra_config: Sequence[str] = (), startup_timeout: float = 10.0,
                 binary: str | None = None) -> None:
        """`startup_timeout` is in seconds; `extra_config` lines are appended to the config."""
        self._own_dir = workdir is None
        base = tempfile.mkdtemp(prefix=f"netroom-{self.name}-") if workdir is None else workdir
        self.datadir = Path(base)
        self.datadir.mkdir(parents=True, exist_ok=True)
        self.host = "127.0.0.1"
        self.extra_config = list(extra_config)
        self.startup_timeout = startup_timeout
        if binary is not None:
            self.binary = binary
        self.stderr_path = self.datadir / f"{self.name}.stderr"
        self.proc: subprocess.Popen[bytes] | None = None
        self._ever_started = False
        self._pick_ports()

    def _pick_ports(self) -> None:  # subclass hook: choose free ports
        raise NotImplementedError

    def _argv(self) -> list[str]:  # subclass hook: write config, return command
        raise NotImplementedError

    def _ready(self) -> bool:  # subclass hook: does it serve yet?
        raise NotImplementedError

    def log_tail(self) -> str:
        """Recent server log output, for error messages."""
        return _tail(self.stderr_path)

    def start(self) -> None:
        """Start the process and wait (at most `startup_timeout` s) until it serves."""
        if self.proc is not None and self.proc.poll() is None:
            return
        if not os.access(self.binary, os.X_OK):
            raise FileNotFoundError(f"{self.binary} not found: {INSTALL_HINT}")
        # A free port can be taken by someone else before we bind it: on the
        # first start only, retry on fresh ports (later starts must reuse them).
        for attempt in range(3 if not self._ever_started else 1):
            if attempt:
                self._pick_ports()
            if self._spawn_and_wait():
                self._ever_started = True
                return
        raise RuntimeError(f"{self.name} did not start; log tail:\n{self.log_tail()}")

    def _spawn_and_wait(self) -> bool:
        argv = self._argv()
        with open(self.stderr_path, "ab") as err:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=err,
                                         stderr=err, start_new_session=True)
        _LIVE.add(self)
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.proc = None
                return False
            if self._ready():
                return True
            time.sleep(0.02)
        self.kill()
        raise TimeoutError(f"{self.name} not ready after {self.startup_timeout} s; "
                           f"log tail:\n{self.log_tail()}")

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM and wait up to `timeout` s (then SIGKILL); a clean shutdown."""
        self._signal(signal.SIGTERM, timeout)

    def kill(self) -> None:
        """SIGKILL: a crash, nothing is flushed."""
        self._signal(signal.SIGKILL, 10.0)

    def _signal(self, sig: int, timeout: float) -> None:
        proc, self.proc = self.proc, None
        _LIVE.discard(self)
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10.0)

    @property
    def running(self) -> bool:
        """True while the process is alive."""
        return self.proc is not None and self.proc.poll() is None

    def close(self) -> None:
        """Stop and delete the temp dir if this object created it."""
        self.stop()
        if self._own_dir:
            shutil.rmtree(self.datadir, ignore_errors=True)

    def __enter__(self: _S) -> _S:
        self.start()
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


class Mosquitto(_Server):
    """mosquitto broker on 127.0.0.1:`port`, anonymous, with persistence in `datadir`."""

    name = "mosquitto"
    binary = MOSQUITTO_BIN

    def _pick_ports(self) -> None:
        self.port = free_port()

    @property
    def config_path(self) -> Path:
        """Path of the generated mosquitto.conf."""
        return self.datadir / "mosquitto.conf"

    def _argv(self) -> list[str]:
        d = self.datadir
        lines = [
            f"listener {self.port} 127.0.0.1",
            "allow_anonymous true",
            # Started as root, mosquitto 2.0 switches to user `mosquitto`, which
            # cannot write our temp dir; `user root` keeps the current user.
            "user root",
            "persistence true",
            f"persistence_location {d}/",
            # 0 = no limit. max_inflight_messages is also the Receive Maximum
            # mosquitto announces in CONNACK (default 20; 0 = none sent, i.e.
            # 65535); toward MQTT5 subscribers the client's own value applies.
            "max_inflight_messages 0",
            # A limit, as deploy/mosquitto sets one (0, "no maximum", the
            # mosquitto docs call not recommended); far above any test's queue.
            "max_queued_messages 10000000",
            f"log_dest file {d}/mosquitto.log",
            *self.extra_config,
        ]
        self.config_path.write_text("\n".join(lines) + "\n")
        return [self.binary, "-c", str(self.config_path)]

    def _ready(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=0.5):
                return True
        except OSError:
            return False

    def log_tail(self) -> str:
        """Tail of mosquitto.log plus stderr."""
        return _tail(self.datadir / "mosquitto.log") + _tail(self.stderr_path)


DEPLOY_MOSQUITTO = Path(__file__).resolve().parent.parent / "deploy" / "mosquitto"
CREDENTIALS_TOOL = DEPLOY_MOSQUITTO / "netroom_credentials.py"
# Debian 12's /etc/mosquitto/mosquitto.conf, with {d} for the locations.
DEBIAN_MAIN = """pid_file {d}/mosquitto.pid

persistence true
persistence_location {d}/

log_dest file {d}/mosquitto.log

include_dir {d}/conf.d
"""


class ProductionMosquitto(Mosquitto):
    """mosquitto with deploy/mosquitto/netroom.conf as shipped, on loopback.

    Debian 12's main mosquitto.conf with the fragment in its conf.d, so a
    duplicate option fails here as it would on the server; users made by
    deploy/mosquitto/netroom_credentials.py (dynamic security plugin). Only
    locations move into the temp dir: the port and the users' file.

    ``pcs``: (site, host) pairs, one user ``<site>/<host>`` each; ``workers``:
    the collector's worker users. Their passwords are in ``passwords`` (user
    -> password) once the object exists; ``set_password`` changes one
    (before ``start()``: the broker reads the file only at start).
    """

    name = "mosquitto"

    def __init__(self, workdir: str | os.PathLike[str] | None = None,
                 pcs: Sequence[tuple[str, str]] = (), workers: int = 1,
                 startup_timeout: float = 10.0, without: Sequence[str] = (),
                 replacing: Mapping[str, str] | None = None) -> None:
        """``without``: lines of netroom.conf to leave out (to show what each one
        does); ``replacing``: line -> the line to put in its place (a shorter
        autosave interval, so a test need not wait a minute for it)."""
        super().__init__(workdir, (), startup_timeout)
        self.without = list(without)
        self.replacing = dict(replacing or {})
        self.dynsec_path = self.datadir / "netroom-dynsec.json"
        self.passwords: dict[str, str] = {}
        self.provision(pcs, workers)

    def credentials(self, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        """Run netroom_credentials.py on this broker's users' file."""
        return subprocess.run(
            [sys.executable, str(CREDENTIALS_TOOL), "--file", str(self.dynsec_path), *args],
            input=stdin, capture_output=True, text=True, timeout=120, check=False)

    def provision(self, pcs: Sequence[tuple[str, str]], workers: int = 1) -> None:
        """`sync` the users' file with ``pcs``; new passwords go to ``passwords``."""
        out = self.datadir / "passwords"
        done = self.credentials("sync", "--pcs", "-", "--out", str(out),
                                "--workers", str(workers),
                                stdin="".join(f"{s},{h}\n" for s, h in pcs))
        if done.returncode != 0:
            raise RuntimeError(f"netroom_credentials.py sync failed: {done.stderr}")
        for path in out.glob("*.txt"):
            for line in path.read_text(encoding="utf-8").splitlines():
                user, _, password = line.partition(":")
                self.passwords[user] = password
        # The collector's workers and settings connection log in with its password.
        shared = [f"netroom-collector-{i}" for i in range(workers)] if workers > 1 else []
        for user in [*shared, "netroom-collector-settings"]:
            self.passwords[user] = self.passwords["netroom-collector"]

    def set_password(self, user: str, password: str) -> None:
        done = self.credentials("passwd", user, stdin=password + "\n")
        if done.returncode != 0:
            raise RuntimeError(f"netroom_credentials.py passwd failed: {done.stderr}")
        for name in list(self.passwords):
            if name == user or name.startswith(user + "-"):
                self.passwords[name] = password

    def _argv(self) -> list[str]:
        d = self.datadir
        conf = (DEPLOY_MOSQUITTO / "netroom.conf").read_text(encoding="utf-8")
        moves = {
            "listener 1883 127.0.0.1": f"listener {self.port} 127.0.0.1",
            "/etc/mosquitto/netroom-dynsec.json": str(self.dynsec_path),
        }
        for old, new in moves.items():
            if conf.count(old) != 1:
                raise RuntimeError(f"netroom.conf no longer has one {old!r}")
            conf = conf.replace(old, new)
        for line, by in [*((w, "") for w in self.without), *self.replacing.items()]:
            if f"\n{line}\n" not in conf:
                raise RuntimeError(f"netroom.conf has no line {line!r}")
            conf = conf.replace(f"\n{line}\n", f"\n{by}\n" if by else "\n")
        (d / "conf.d").mkdir(exist_ok=True)
        (d / "conf.d" / "netroom.conf").write_text(conf, encoding="utf-8")
        # As root mosquitto 2.0 would switch to user `mosquitto`, which cannot
        # read the test's temp dir.
        self.config_path.write_text("user root\n" + DEBIAN_MAIN.format(d=d), encoding="utf-8")
        return [self.binary, "-c", str(self.config_path)]


class Influxd(_Server):
    """InfluxDB 1.x on `url` (HTTP) with meta/data/wal dirs in `datadir`."""

    name = "influxd"
    binary = INFLUXD_BIN

    def __init__(self, workdir: str | os.PathLike[str] | None = None,
                 extra_config: Sequence[str] = (), startup_timeout: float = 10.0,
                 binary: str | None = None, auth_enabled: bool = False,
                 http_config: Sequence[str] = ()) -> None:
        """`extra_config` goes before the first section: top-level keys or whole new
        sections (not [meta] [data] [http] [monitor] [subscriber] [logging]);
        `http_config` lines go in [http] (e.g. "max-body-size = 100000")."""
        self.auth_enabled = auth_enabled
        self.http_config = list(http_config)
        self.auth: tuple[str, str] | None = None  # (user, password) used by query/write
        super().__init__(workdir, extra_config, startup_timeout, binary)

    def _pick_ports(self) -> None:
        self.port = free_port()
        self.rpc_port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"

    def _argv(self) -> list[str]:
        d = self.datadir
        conf = f"""reporting-disabled = true
bind-address = "127.0.0.1:{self.rpc_port}"
{chr(10).join(self.extra_config)}
[meta]
  dir = "{d}/meta"
[data]
  dir = "{d}/data"
  wal-dir = "{d}/wal"
  query-log-enabled = false
[http]
  enabled = true
  bind-address = "127.0.0.1:{self.port}"
  auth-enabled = {str(self.auth_enabled).lower()}
  log-enabled = false
{chr(10).join("  " + line for line in self.http_config)}
[monitor]
  store-enabled = false
[subscriber]
  enabled = false
[logging]
  suppress-logo = true
"""
        path = d / "influxdb.conf"
        path.write_text(conf)
        return [self.binary, "-config", str(path)]

    def _ready(self) -> bool:
        try:
            with OPENER.open(self.url + "/ping", timeout=0.5) as r:
                return int(r.status) == 204
        except OSError:  # includes URLError
            return False

    def _request(self, path: str, params: dict[str, str], body: bytes | None) -> Any:
        """GET (body None) or POST to influxd; JSON-decoded answer (None if empty)."""
        if self.auth is not None:
            params = {**params, "u": self.auth[0], "p": self.auth[1]}
        url = f"{self.url}{path}?{urllib.parse.urlencode(params)}"
        req = urllib.request.Request(url, data=body, method="GET" if body is None else "POST")
        try:
            with OPENER.open(req, timeout=30) as r:
                data = r.read()
                return json.loads(data) if data else None
        except urllib.error.HTTPError as e:
            raise RuntimeError(f"influxd {path} HTTP {e.code}: {e.read()!r}") from e

    def query(self, q: str, db: str = "") -> dict[str, Any]:
        """GET /query (SELECT/SHOW); timestamps as epoch milliseconds."""
        out: dict[str, Any] = self._request("/query", {"db": db, "q": q, "epoch": "ms"}, None)
        return out

    def post(self, q: str, db: str = "") -> dict[str, Any]:
        """POST /query, for CREATE/DROP/ALTER statements."""
        params = {"q": q, "db": db} if db else {"q": q}
        out: dict[str, Any] = self._request("/query", params, b"")
        return out

    def write(self, lines: str, db: str, precision: str = "ms") -> None:
        """POST line protocol to /write; `precision` is the timestamp unit (ns/u/ms/s)."""
        self._request("/write", {"db": db, "precision": precision}, lines.encode())


@atexit.register
def _kill_leftovers() -> None:
    for server in list(_LIVE):
        server.kill()
