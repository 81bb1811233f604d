"""What `netroom-agent doctor` and `netroom doctor` share: the report (one
line per finding, Chinese by default, English with --lang en; a problem's
line carries its fix) and the broker check (login, TLS, a test publish and
a subscription, each answer's reason code read).

Texts are keyed: ``TEXTS[key] = (zh, en)`` and ``TEXTS[key + ".fix"]`` for a
problem's fix, ``str.format`` fields filled from the finding. Each program
adds its own keys (agent/doctor.py, collector/cli/doctor.py).
"""
from __future__ import annotations

import sys
import threading
import time
from typing import IO, Any, Mapping, NamedTuple

import paho.mqtt.client as mqtt

from netroom.mqtt import (
    QOS,
    UNREACHABLE,
    MqttConfig,
    connack_failure,
    connect_args,
    connect_failure,
    make_client,
)

LANGS = ("zh", "en")
MARKS = {"ok": ("[正常]", "[ok]"), "problem": ("[问题]", "[PROBLEM]"),
         "note": ("[提示]", "[note]")}
FIX = ("；解决：", " -- fix: ")
SUMMARY = {"none": ("未发现问题", "no problems found"),
           "some": ("发现 {n} 个问题", "{n} problem(s) found")}

# The broker check's words (where = host:port).
TEXTS: dict[str, tuple[str, str]] = {
    "mqtt.ok": ("代理服务器 {where}：以 {who} 登录成功（MQTT {protocol}{tls}）",
                "broker {where}: logged in as {who} (MQTT {protocol}{tls})"),
    "mqtt.refused": ("代理服务器 {where}：连接被拒绝，该端口无服务",
                     "broker {where}: connection refused, nothing listens there"),
    "mqtt.refused.fix": ("确认 mosquitto 在运行、mqtt.port 正确、防火墙放行该端口",
                         "start mosquitto, or correct mqtt.port, or open the port in the "
                         "firewall"),
    "mqtt.unknown_host": ("代理服务器 {where}：无法解析主机名（{detail}）",
                          "broker {where}: unknown host ({detail})"),
    "mqtt.unknown_host.fix": ("改正 mqtt.host，或改用 IP 地址，或修好本机 DNS",
                              "correct mqtt.host, use the address, or fix this PC's DNS"),
    "mqtt.timeout": ("代理服务器 {where}：连接超时", "broker {where}: timed out connecting"),
    "mqtt.timeout.fix": ("检查防火墙是否丢弃数据包、mqtt.host 地址是否正确",
                         "a firewall drops the packets, or mqtt.host is a wrong address"),
    "mqtt.cannot_connect": ("代理服务器 {where}：无法连接（{detail}）",
                            "broker {where}: cannot connect ({detail})"),
    "mqtt.cannot_connect.fix": ("检查网络、mqtt.host 和 mqtt.port；设置了 mqtt.tls 时须用 TLS 端口",
                                "check the network, mqtt.host and mqtt.port; with mqtt.tls "
                                "use the broker's TLS port"),
    "mqtt.tls_untrusted": ("代理服务器 {where}：TLS 证书不受信任（{detail}）",
                           "broker {where}: TLS: the broker's certificate is not trusted "
                           "({detail})"),
    "mqtt.tls_untrusted.fix": ("mqtt.host 须是证书中的名称或地址，mqtt.tls.ca 须是签发该证书的 CA",
                               "mqtt.host must be a name in the certificate, mqtt.tls.ca the "
                               "CA that signed it"),
    "mqtt.tls_handshake": ("代理服务器 {where}：TLS 握手失败（{detail}）",
                           "broker {where}: TLS handshake failed ({detail})"),
    "mqtt.tls_handshake.fix": ("该端口可能不是 TLS 端口：TLS 用 8883", "use the broker's TLS "
                               "port (8883)"),
    "mqtt.closed_early": ("代理服务器 {where}：未接受连接就关闭了",
                          "broker {where}: closed the connection before accepting it"),
    "mqtt.closed_early.fix": ("可能连到了 TLS 端口却未设置 mqtt.tls："
                              "设置 mqtt.tls.ca，或改用普通端口",
                              "a TLS port without mqtt.tls? set mqtt.tls.ca, or use the plain "
                              "port"),
    "mqtt.bad_login": ("代理服务器 {where}：用户名或密码错误（用户 {who}）",
                       "broker {where}: bad user name or password for {who}"),
    "mqtt.not_authorized": ("代理服务器 {where}：拒绝用户 {who} 登录"
                            "（密码错误、用户不存在或不允许连接）",
                            "broker {where}: not authorized: the broker refused {who} (wrong "
                            "password, unknown user, or not allowed to connect)"),
    "mqtt.connack": ("代理服务器 {where}：拒绝连接（{detail}）",
                     "broker {where}: refused the connection ({detail})"),
    "mqtt.login.fix": ("核对 mqtt.username 与密码（NETROOM_MQTT_PASSWORD 或 mqtt.password），"
                       "在代理服务器上用 netroom_credentials.py list 查看用户",
                       "check mqtt.username and its password (NETROOM_MQTT_PASSWORD or "
                       "mqtt.password) against netroom_credentials.py ... list on the broker"),
    "mqtt.no_answer": ("代理服务器 {where}：{timeout:g} 秒内无应答",
                       "broker {where}: no answer within {timeout:g} s"),
    "mqtt.no_answer.fix": ("检查 mqtt.host/mqtt.port 是否指向 MQTT 服务", "check that "
                           "mqtt.host and mqtt.port name an MQTT broker"),
    "mqtt.publish_ok": ("测试发布到 {topic}：代理服务器已接受（QoS 1）",
                        "test publish to {topic}: accepted by the broker (QoS 1)"),
    "mqtt.publish_refused": ("测试发布到 {topic}：被代理服务器拒绝（{detail}）",
                             "test publish to {topic}: refused by the broker ({detail})"),
    "mqtt.publish_unanswered": ("测试发布到 {topic}：{timeout:g} 秒内未确认",
                                "test publish to {topic}: not acknowledged within {timeout:g} s"),
    "mqtt.publish_unanswered.fix": ("查看 mosquitto 日志中该用户的记录（ACL 拒绝会断开连接）",
                                    "look for this user in mosquitto's log (a refusal may close "
                                    "the connection)"),
    "mqtt.unchecked_311": ("mqtt.protocol 为 3.1.1：代理服务器会悄悄丢弃被拒绝的消息，无法检查权限",
                           "mqtt.protocol is 3.1.1: the broker drops a refused message "
                           "silently, so the ACL cannot be checked"),
    "mqtt.unchecked_311.fix": ("设置 mqtt.protocol: \"5\"", "set mqtt.protocol: \"5\""),
    "mqtt.subscribe_ok": ("订阅 {topic}：已获准", "subscription to {topic}: granted"),
    "mqtt.subscribe_refused": ("订阅 {topic}：被拒绝（{detail}）",
                               "subscription to {topic}: refused ({detail})"),
}


class Report:
    """Prints findings as they come; ``problems`` counts the problem lines."""

    def __init__(self, lang: str, texts: Mapping[str, tuple[str, str]],
                 out: IO[str] | None = None) -> None:
        self.i = LANGS.index(lang)
        self.texts = {**TEXTS, **texts}
        self.out = out or sys.stdout
        self.problems = 0

    def text(self, key: str, /, **fields: Any) -> str:
        pair = self.texts.get(key)
        return pair[self.i].format(**fields) if pair else key

    def _line(self, mark: str, key: str, fix: str | None, fields: Mapping[str, Any]) -> None:
        line = f"{MARKS[mark][self.i]} {self.text(key, **fields)}"
        fix_key = fix or key + ".fix"
        if mark == "problem" and fix_key in self.texts:
            line += FIX[self.i] + self.text(fix_key, **fields)
        print(line, file=self.out, flush=True)

    def ok(self, key: str, /, **fields: Any) -> None:
        self._line("ok", key, None, fields)

    def note(self, key: str, /, **fields: Any) -> None:
        self._line("note", key, None, fields)

    def problem(self, key: str, fix: str | None = None, /, **fields: Any) -> None:
        """A problem line; its fix is ``TEXTS[fix or key + '.fix']``."""
        self.problems += 1
        self._line("problem", key, fix, fields)

    def summary(self) -> None:
        which = "some" if self.problems else "none"
        print(SUMMARY[which][self.i].format(n=self.problems), file=self.out, flush=True)


class Probe(NamedTuple):
    """What the broker answered: ``code`` (ok, one of netroom.mqtt's connect
    or CONNACK failure codes, closed_early, no_answer) and ``detail``; the
    test publish's and subscription's reason codes (None: not asked or no
    answer)."""

    code: str
    detail: str = ""
    publish: int | None = None
    subscribe: int | None = None
    reason: str = ""  # the refused publish's or subscription's reason, in words


def probe(cfg: MqttConfig, client_id: str, timeout_s: float,
          publish: tuple[str, bytes, bool] | None = None,
          subscribe: str = "") -> Probe:
    """Log in once as ``cfg`` says; then publish (topic, payload, retain) with
    QoS 1 and subscribe to ``subscribe`` if given, reading each answer's
    reason code. Never raises for what the network or the broker does."""
    client = make_client(cfg, client_id)
    client.connect_timeout = timeout_s
    done = threading.Event()
    state: dict[str, Any] = {}

    def on_connect(c: mqtt.Client, u: Any, flags: Any, reason: Any, props: Any) -> None:
        state["connack"] = reason
        done.set()

    def on_disconnect(c: mqtt.Client, u: Any, flags: Any, reason: Any, props: Any) -> None:
        state.setdefault("closed", reason)
        done.set()

    def on_publish(c: mqtt.Client, u: Any, mid: int, reason: Any, props: Any) -> None:
        state["puback"] = reason
        done.set()

    def on_subscribe(c: mqtt.Client, u: Any, mid: int, reasons: Any, props: Any) -> None:
        state["suback"] = reasons[0] if reasons else None
        done.set()

    client.on_connect, client.on_disconnect = on_connect, on_disconnect
    client.on_publish, client.on_subscribe = on_publish, on_subscribe
    args = connect_args(cfg, persistent=False)
    try:
        client.connect(**args)
    except (OSError, ValueError) as exc:
        code, detail = connect_failure(exc)
        return Probe(code, detail)
    client.loop_start()
    try:
        return _converse(client, done, state, timeout_s, publish, subscribe)
    finally:
        client.disconnect()
        client.loop_stop()


def _wait(done: threading.Event, state: dict[str, Any], key: str, timeout_s: float) -> bool:
    """Wait up to ``timeout_s`` for ``state[key]`` (or a disconnect); True if it came."""
    deadline = time.monotonic() + timeout_s
    while key not in state and "closed" not in state and time.monotonic() < deadline:
        done.wait(0.05)
        done.clear()
    return key in state


def _converse(client: mqtt.Client, done: threading.Event, state: dict[str, Any],
              timeout_s: float, publish: tuple[str, bytes, bool] | None,
              subscribe: str) -> Probe:
    if not _wait(done, state, "connack", timeout_s):
        return Probe("closed_early") if "closed" in state else Probe("no_answer")
    reason = state["connack"]
    if reason.is_failure:
        return Probe(connack_failure(reason), str(reason))
    pub_code = sub_code = None
    why = ""
    if publish is not None:
        client.publish(publish[0], publish[1], qos=QOS, retain=publish[2])
        if _wait(done, state, "puback", timeout_s):
            pub_code = int(state["puback"].value)
            why = str(state["puback"]) if state["puback"].is_failure else ""
    if subscribe and "closed" not in state:
        client.subscribe(subscribe, qos=QOS)
        if _wait(done, state, "suback", timeout_s) and state["suback"] is not None:
            sub_code = int(state["suback"].value)
            if state["suback"].is_failure:
                why = why or str(state["suback"])
    return Probe("ok", "", pub_code, sub_code, why)


def report_probe(r: Report, p: Probe, cfg: MqttConfig, who: str, timeout_s: float,
                 topic: str = "", subscribe: str = "") -> None:
    """The lines of one probe: the login, then the publish and the subscription."""
    where = f"{cfg.host}:{cfg.port}"
    base = {"where": where, "who": who, "detail": p.detail, "timeout": timeout_s}
    if p.code != "ok":
        fix = "mqtt.login.fix" if p.code in ("bad_login", "not_authorized", "connack") \
            else None
        r.problem(f"mqtt.{p.code}", fix, **base)
        return
    r.ok("mqtt.ok", protocol=cfg.protocol, tls=", TLS" if cfg.tls else "", **base)
    if topic:
        if cfg.protocol != "5":
            r.problem("mqtt.unchecked_311", **base)
        elif p.publish is None:
            r.problem("mqtt.publish_unanswered", topic=topic, **base)
        elif p.publish >= 0x80:
            r.problem("mqtt.publish_refused", "acl.fix", topic=topic,
                      **{**base, "detail": f"{p.reason}, 0x{p.publish:02X}"})
        else:
            r.ok("mqtt.publish_ok", topic=topic, **base)
    if subscribe:
        if p.subscribe is not None and p.subscribe >= 0x80:
            r.problem("mqtt.subscribe_refused", "acl.fix", topic=subscribe,
                      **{**base, "detail": f"{p.reason}, 0x{p.subscribe:02X}"})
        elif p.subscribe is not None:
            r.ok("mqtt.subscribe_ok", topic=subscribe, **base)


__all__ = ["LANGS", "TEXTS", "UNREACHABLE", "Probe", "Report", "probe", "report_probe"]
