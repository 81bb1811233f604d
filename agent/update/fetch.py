"""Downloads for the update: http.client only, bounded in size and time.

No proxy is ever used (urllib would take one from the environment): a
release comes from the fleet's own collector, and a gov PC must not reach
out through whatever proxy a user configured.
"""
from __future__ import annotations

import hashlib
import http.client
import ssl
from urllib.parse import urlsplit

BLOCK = 256 * 1024  # bytes per read


class FetchError(OSError):
    """A download that failed; str() is the reason, naming the URL."""


def _open(url: str, timeout_s: float
          ) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
    u = urlsplit(url)
    if u.scheme not in ("http", "https") or not u.hostname:
        raise FetchError(f"{url}: not an http(s) URL")
    conn: http.client.HTTPConnection
    if u.scheme == "https":
        conn = http.client.HTTPSConnection(u.hostname, u.port or 443, timeout=timeout_s,
                                           context=ssl.create_default_context())
    else:
        conn = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=timeout_s)
    path = (u.path or "/") + (f"?{u.query}" if u.query else "")
    try:
        conn.request("GET", path, headers={"User-Agent": "netroom-agent-update"})
        resp = conn.getresponse()
    except (OSError, http.client.HTTPException) as exc:
        conn.close()
        raise FetchError(f"{url}: {type(exc).__name__}: {exc}") from None
    if resp.status != 200:
        conn.close()
        raise FetchError(f"{url}: HTTP {resp.status} {resp.reason}")
    return conn, resp


def get(url: str, limit: int, timeout_s: float = 30.0) -> bytes:
    """The body of ``url``, at most ``limit`` bytes (more is an error)."""
    conn, resp = _open(url, timeout_s)
    try:
        data = resp.read(limit + 1)
    except (OSError, http.client.HTTPException) as exc:
        raise FetchError(f"{url}: {type(exc).__name__}: {exc}") from None
    finally:
        conn.close()
    if len(data) > limit:
        raise FetchError(f"{url}: larger than {limit} bytes")
    return data


def download(url: str, path: str, size: int, sha256: str, timeout_s: float = 60.0) -> None:
    """``url`` into ``path``, which must then hold exactly ``size`` bytes with
    SHA-256 ``sha256`` (hex); else FetchError (and ``path`` may hold a part)."""
    digest = hashlib.sha256()
    got = 0
    conn, resp = _open(url, timeout_s)
    try:
        with open(path, "wb") as f:
            while True:
                block = resp.read(BLOCK)
                if not block:
                    break
                got += len(block)
                if got > size:
                    raise FetchError(f"{url}: longer than the manifest's {size} bytes")
                digest.update(block)
                f.write(block)
    except (http.client.HTTPException, TimeoutError) as exc:
        raise FetchError(f"{url}: {type(exc).__name__}: {exc}") from None
    finally:
        conn.close()
    if got != size:
        raise FetchError(f"{url}: {got} bytes, the manifest says {size}")
    if digest.hexdigest() != sha256:
        raise FetchError(f"{url}: SHA-256 {digest.hexdigest()} is not the manifest's {sha256}")
