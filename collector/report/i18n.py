"""Labels for people, Chinese (the default) and English.

Rule titles live in each rule module's TITLE; every other word a report
shows is here, one line per key: LABELS, and REASONS for the reasons rules
give (collector.compliance.rules.base.Reason: a key and its parameters). A
key without a label shows as itself.
"""
from __future__ import annotations

import re
from typing import Any, Callable, Iterable, Mapping

LANGS = ("zh", "en")

LABELS: dict[str, tuple[str, str]] = {  # key: (zh, en)
    "title": ("网络室达标情况报告", "Network room compliance report"),
    "generated_at": ("生成时间", "Generated"),
    "summary": ("概况", "Summary"),
    "sites": ("站点", "Sites"),
    "site": ("站点", "Site"),
    "name": ("名称", "Name"),
    "path": ("所属单位", "Unit"),
    "result": ("结论", "Result"),
    "site_result": ("站点结论", "Site result"),
    "pass": ("达标", "pass"),
    "fail": ("未达标", "FAIL"),
    "waived": ("豁免", "waived"),
    "waived_reason": ("豁免原因", "Waiver"),
    "na": ("—", "—"),
    "no_data": ("无数据", "no data"),
    "not_applicable": ("不适用", "n/a"),
    "passing": ("全部达标", "All pass"),
    "failing": ("未全部达标", "Failing"),
    "cell_note": ("单元格：结论 实际/要求 单位（原因）",
                  "Cells: result actual/required unit (why)"),
    "rollup": ("各单位汇总", "Roll-up per unit"),
    "rollup_note": ("各列为达标站点数/有结论站点数，无数据的站点另计",
                    "Each column: sites passing / sites with a verdict; sites without "
                    "data counted apart"),
    "unit": ("单位", "Unit"),
    "level": ("级别", "Level"),
    "site_count": ("站点数", "Sites"),
    "procurement": ("采购缺口清单", "Procurement shortfall list"),
    "procurement_note": ("各站点全部达标所需增加的最少数量", "Least to add for every rule to pass"),
    "total": ("合计", "Total"),
    "subtotal": ("小计", "Subtotal"),
    "nothing_needed": ("无缺口", "Nothing to add"),
    "unregistered": ("未登记主机（上报的站点不在组织树中）",
                     "Unregistered hosts (their site is not in the tree)"),
    "unregistered_hosts": ("未登记主机", "Unregistered hosts"),
    # PCs cloned from one image (collector.compliance.facts.Clone)
    "clones": ("克隆电脑（需修正）", "Cloned PCs (to fix)"),
    "clone_pcs": ("克隆电脑", "Cloned PCs"),
    "clones_hint": ("同一镜像克隆的电脑须改主机名并重新生成 machine-id",
                    "Clones of one image need their own hostname and machine id"),
    "clone_hostname": ("主机名相同", "same hostname"),
    "clone_machine_id": ("机器标识相同", "same machine id"),
    # PCs not on their site's settings from the centre (netroom.central.SettingsState)
    "settings": ("设置未同步的电脑", "PCs not on the centre's settings"),
    "settings_state": ("状态", "State"),
    "settings_current": ("设置最新", "settings up to date"),
    "settings_stale": ("运行过期设置", "running stale settings"),
    "settings_refused": ("拒绝了中心下发的设置", "refused the centre's settings"),
    "settings_none": ("未收到中心设置", "no settings from the centre"),
    "settings_runs": ("运行 {running}，应为 {expected}", "runs {running}, should run {expected}"),
    "settings_error": ("原因：{error}", "reason: {error}"),
    "settings_local": ("本机设置优先：{local}", "own settings win: {local}"),
    "settings_hint": ("电脑开机并连上服务器后自动更新设置；修改 config.yaml 后须重启采集服务",
                      "PCs update once on and connected; restart the collector after "
                      "editing config.yaml"),
    "none": ("无", "None"),
    "host": ("主机", "Host"),
    "network": ("网络", "Network"),
    "role": ("用途", "Role"),
    "last_seen": ("最近上报", "Last seen"),
    "rule": ("标准", "Rule"),
    "required": ("要求", "Required"),
    "actual": ("实际", "Actual"),
    "shortfall": ("缺口", "Shortfall"),
    # CSV numeric columns, by the rule's unit (collector.report.format.UNITS)
    "actual_in": ("实际({})", "Actual ({})"),
    "required_in": ("要求({})", "Required ({})"),
    "pcs_unit": ("台", "PCs"),
    # netroom deadletter
    "deadletters": ("已搁置消息", "Dead letters"),
    "received_at": ("接收时间", "Received"),
    "reason": ("原因", "Reason"),
    "source": ("来源", "Source"),
    "bytes": ("字节", "Bytes"),
    "detail": ("详情", "Detail"),
    # org levels
    "bureau": ("局", "Bureau"),
    "detachment": ("支队", "Detachment"),
    "battalion": ("大队", "Battalion"),
    "squadron": ("中队", "Squadron"),
    # shortfall keys, as "to add" columns
    "gov_pcs": ("需增政务网电脑(台)", "Gov PCs to add"),
    "internet_pcs": ("需增互联网电脑(台)", "Internet PCs to add"),
    "gov_mbps": ("需增政务网带宽(Mbit/s)", "Gov Mbit/s to add"),
    "internet_mbps": ("需增互联网带宽(Mbit/s)", "Internet Mbit/s to add"),
    # networks and roles
    "gov": ("政务网", "gov"),
    "internet": ("互联网", "internet"),
    "cadre": ("干部", "cadre"),
    "room": ("网络室", "room"),
    "class": ("班级", "class"),
    "office": ("办公", "office"),
    # netroom availability / netroom isolation
    "availability_title": ("网络室开放情况", "Network room opening"),
    "now": ("当前", "Now"),
    "open_now": ("开放", "open"),
    "closed_now": ("关闭", "CLOSED"),
    "closed_since": ("自 {} 起关闭", "closed since {}"),
    "online_of": ("{}/{} 台在线", "{}/{} online"),
    "date": ("日期", "Date"),
    "required_h": ("要求(小时)", "Required (h)"),
    "open_h": ("已开放(小时)", "Open (h)"),
    "open_share": ("开放率", "Open share"),
    "rolling_share": ("近{}日开放率", "{}-day share"),
    "day_off": ("无需开放", "day off"),
    "must_open": ("应开放", "Required now"),
    "yes": ("是", "yes"),
    "no": ("否", "no"),
    "first_report": ("首次上报", "First report"),
    "before_first_report": ("首次上报前", "before the first report"),
    "closed_required_n": ("{} 个网络室应开放而关闭", "{} rooms closed while required open"),
    "not_in_tree": ("未登记", "not in the tree"),
    "isolation_title": ("政务网电脑连通互联网情况", "Gov PCs that can reach the internet"),
    "violated": ("违规", "VIOLATION"),
    "sealed": ("正常", "ok"),
    "reasons": ("原因", "Reasons"),
    "reported_at": ("上报时间", "Reported"),
    "isolation_summary": ("{} 台政务网电脑违规（共 {} 台上报）",
                          "{} gov PCs in violation ({} reporting)"),
    "no_violation": ("没有政务网电脑能连通互联网", "No gov PC can reach the internet"),
    "isolation_not_configured_pc": ("未配置隔离检测", "no isolation canaries configured"),
    "isolation_no_report_pc": ("无隔离检测上报", "no isolation report"),
    "isolation_not_configured_n": ("{} 台未配置隔离检测", "{} with no canaries configured"),
    "isolation_no_report_n": ("{} 台无隔离检测上报", "{} with no isolation report"),
    "isolation_no_data": ("{} 台政务网电脑无数据（{}）", "{} gov PCs without data ({})"),
    "no_violation_known": ("有数据的 {} 台政务网电脑均未违规",
                           "No violation on the {} gov PCs with data"),
    "no_reports": ("最近 {} 天没有政务网电脑上报隔离检查",
                   "No gov PC reported an isolation check in the last {} days"),
}


# Why a verdict is what it is (collector.compliance.rules.base.Reason): key ->
# (zh, en) str.format templates over the reason's parameters (format specs
# welcome: {ago:.1f}). A parameter named ``network`` is shown through LABELS.
REASONS: dict[str, tuple[str, str]] = {
    # any rule, any site
    "site_silent": ("站点 {days} 天内无任何上报", "nothing received from the site in {days} days"),
    "no_pcs": ("站点无电脑上报", "no PC of the site reports"),
    "rule_disabled": ("未启用", "not enabled"),
    "does_not_apply": ("不适用于本站点", "does not apply to this site"),
    # PC counts
    "pcs_short": ("缺 {n} 台{network}电脑", "{n} {network} PCs short"),
    "cadre_pcs": ("{heads} 名干部，{have} 台{network}电脑",
                  "{have} {network} PCs for {heads} cadres"),
    "staff_pcs": ("{heads} 名职工，{have} 台非干部政务网电脑",
                  "{have} shared gov PCs for {heads} staff"),
    "room_empty": ("网络室无电脑", "no PC in the room"),
    "room_share_short": ("网络室需增 {n} 台政务网电脑", "{n} gov PCs to add to the room"),
    "room_share": ("网络室 {total} 台电脑中政务网 {gov} 台", "{gov} gov of {total} room PCs"),
    # bandwidth
    "no_room_pcs": ("无网络室电脑", "no room PCs"),
    "no_speed_test": ("{network} {hours:g} 小时内无测速",
                      "{network}: no speed test in {hours:g} h"),
    "last_test_failed": ("{network}最近一次测速失败：{error}",
                         "{network}: last test failed: {error}"),
    "mbps_short": ("{network}带宽需增 {add:g} Mbit/s", "{network}: {add:g} Mbit/s to add"),
    "per_pc": ("{network} {mbps:g} Mbit/s ÷ {pcs} 台网络室电脑 = 每台 {per_pc:.2f} Mbit/s",
               "{network}: {mbps:g} Mbit/s / {pcs} room PCs = {per_pc:.2f} Mbit/s per PC"),
    "testers": ("{network}有 {n} 台测速电脑（{hosts}），只保留一台",
                "{network}: {n} testers ({hosts}), keep one"),
    "browse_failed": ("网页浏览失败：{hosts}", "browsing failed on {hosts}"),
    "browse_ok": ("{n} 台网络室电脑浏览正常", "browsing ok on {n} room PCs"),
    "speed_test": ("{host} {ago:.1f} 小时前测得下行 {down:g} Mbit/s",
                   "down {down:g} Mbit/s by {host}, {ago:.1f} h ago"),
    "speed_test_up": ("{host} {ago:.1f} 小时前测得下行 {down:g} Mbit/s、上行 {up:g} Mbit/s",
                      "down {down:g} Mbit/s, up {up:g} Mbit/s by {host}, {ago:.1f} h ago"),
    "trend": ("近 {days} 天均值 {recent:.1f} Mbit/s，此前 {before:.1f}，变化 {delta:+.1f} Mbit/s",
              "trend {delta:+.1f} Mbit/s ({days} d mean {recent:.1f} vs {before:.1f} before)"),
    # room opening
    "day_off": ("期间无需开放", "no opening required in the period"),
    "no_heartbeats": ("网络室电脑无心跳上报", "no heartbeat from any room PC"),
    "before_first_report": ("考核期在网络室电脑首次上报之前，无从判断",
                            "the period is before the room PCs' first report: unknown"),
    "open_day": ("{day} 开放 {open_h:.1f} 小时，应开放 {required_h:.1f} 小时",
                 "open {open_h:.1f} h of {required_h:.1f} h on {day}"),
    "open_days": ("{first} 至 {last} 开放 {open_h:.1f} 小时，应开放 {required_h:.1f} 小时",
                  "open {open_h:.1f} h of {required_h:.1f} h ({first}..{last})"),
    "rolling_share": ("近 {days} 天开放率 {share:.1%}", "{days} days: {share:.1%}"),
    "open_now": ("当前开放（{online}/{pcs} 台在线）",
                 "open now ({online} of {pcs} room PCs online)"),
    "closed_since": ("自 {since} 起关闭", "closed since {since}"),
    "closed_now": ("当前关闭", "closed now"),
    # portal
    "no_gov_pcs": ("无政务网电脑", "no gov PCs"),
    "probe_not_configured": ("{n} 台电脑未配置门户探测（{probe}）",
                             "{n} PCs do not run the portal probe ({probe})"),
    "probe_stale": ("{n} 台电脑 {minutes} 分钟内无门户探测结果",
                    "{n} PCs have no portal probe result in {minutes} min"),
    "portal_unreachable": ("{n} 台电脑无法访问政工网：{hosts}",
                           "{n} PCs cannot reach the portal: {hosts}"),
    "portal_share": ("{reached}/{gov} 台政务网电脑可访问政工网",
                     "{reached} of {gov} gov PCs reach the portal"),
    # isolation
    "isolation_not_configured": ("{n} 台电脑未配置隔离检测：{hosts}",
                                 "{n} PCs have no isolation canaries configured: {hosts}"),
    "isolation_silent": ("{n} 台电脑无隔离检测上报：{hosts}",
                         "{n} PCs sent no isolation report: {hosts}"),
    "isolation_violated": ("{n} 台电脑违规：{hosts}", "{n} PCs in violation: {hosts}"),
    "isolation_reported": ("{reported}/{gov} 台政务网电脑上报隔离检测",
                           "{reported} of {gov} gov PCs reported an isolation check"),
}
SEPARATOR = {"zh": "；", "en": "; "}  # between reasons

# The agents' isolation reasons (agent/collectors/isolation.py, verdict()) are
# English text on the wire, "; "-joined: each known form, worded in Chinese.
# Names come from agents: shown (through safe_text), never obeyed.
_NAME = r"([^\s;,]+)"
_AGENT_ZH = (
    (re.compile(rf"canary {_NAME} reached"), "可连通外网探测目标 {0}"),
    (re.compile(rf"(wireless|usb|mobile) interface {_NAME} is up"), "{0}网卡 {1} 已启用"),
    (re.compile(r"default routes via (\d+) interfaces: ([^\s;]+)"), "默认路由经 {0} 个网卡：{1}"),
)
_BRIDGE_ZH = {"wireless": "无线", "usb": "USB 共享", "mobile": "移动网络"}


def label(key: str, lang: str) -> str:
    pair = LABELS.get(key)
    if pair is None:
        return key
    return pair[0] if lang == "zh" else pair[1]


def reason(key: str, params: Mapping[str, Any], lang: str) -> str:
    """One reason in ``lang``; an unknown key (or a template the parameters do
    not fit) shows as the key and its parameters rather than failing a report."""
    pair = REASONS.get(key)
    values = {k: label(str(v), lang) if k == "network" else _plain(v)
              for k, v in params.items()}
    if key == "isolation_violated" and isinstance(values.get("hosts"), str):
        values["hosts"] = agent_text(values["hosts"], lang)  # "pc-1: canary x reached"
    if pair is not None:
        try:
            return (pair[0] if lang == "zh" else pair[1]).format(**values)
        except (KeyError, IndexError, ValueError, TypeError):
            pass
    return " ".join([key, *(f"{k}={v}" for k, v in params.items())])


def agent_text(text: str, lang: str) -> str:
    """An agent's isolation reasons in ``lang``: in Chinese, each known form
    worded ("canary inet-tcp reached" -> "可连通外网探测目标 inet-tcp") and the
    agent's "; " between them a full-width semicolon; English and unknown
    text as sent."""
    if lang != "zh" or not text:
        return text
    for pattern, template in _AGENT_ZH:
        text = pattern.sub(_worded(template), text)
    return text.replace("; ", SEPARATOR["zh"])


def _worded(template: str) -> Callable[[re.Match[str]], str]:
    def sub(m: re.Match[str]) -> str:
        return template.format(*(_BRIDGE_ZH.get(g, g) for g in m.groups()))
    return sub


def reasons(items: Iterable[tuple[str, Mapping[str, Any]]], lang: str) -> str:
    """Several reasons, joined the way ``lang`` lists them."""
    return SEPARATOR.get(lang, "; ").join(reason(k, p, lang) for k, p in items)


def _plain(v: Any) -> Any:
    """7.0 -> 7 (so a day count reads "7 天"); other values as they are."""
    return int(v) if isinstance(v, float) and v.is_integer() else v
