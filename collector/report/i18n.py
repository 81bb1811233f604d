"""Labels for people, Chinese (the default) and English.

Rule titles live in each rule module's TITLE; every other word a report
shows is here, one line per key. A key without a label shows as itself.
"""
from __future__ import annotations

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
    "passing": ("全部达标", "All pass"),
    "failing": ("未全部达标", "Failing"),
    "cell_note": ("单元格：结论 实际/要求", "Cells: result actual/required"),
    "rollup": ("各单位汇总", "Roll-up per unit"),
    "rollup_note": ("各列为达标站点数/适用站点数", "Each column: sites passing / sites checked"),
    "unit": ("单位", "Unit"),
    "level": ("级别", "Level"),
    "site_count": ("站点数", "Sites"),
    "procurement": ("采购缺口清单", "Procurement shortfall list"),
    "procurement_note": ("各站点全部达标所需增加的最少数量", "Least to add for every rule to pass"),
    "total": ("合计", "Total"),
    "nothing_needed": ("无缺口", "Nothing to add"),
    "unregistered": ("未登记主机（上报的站点不在组织树中）",
                     "Unregistered hosts (their site is not in the tree)"),
    "unregistered_hosts": ("未登记主机", "Unregistered hosts"),
    "none": ("无", "None"),
    "host": ("主机", "Host"),
    "network": ("网络", "Network"),
    "role": ("用途", "Role"),
    "last_seen": ("最近上报", "Last seen"),
    "rule": ("标准", "Rule"),
    "required": ("要求", "Required"),
    "actual": ("实际", "Actual"),
    "shortfall": ("缺口", "Shortfall"),
    # org levels
    "bureau": ("局", "Bureau"),
    "detachment": ("支队", "Detachment"),
    "battalion": ("大队", "Battalion"),
    "squadron": ("中队", "Squadron"),
    # shortfall keys, as "to add" columns
    "gov_pcs": ("需增政务网电脑", "Gov PCs to add"),
    "internet_pcs": ("需增互联网电脑", "Internet PCs to add"),
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
    "required_h": ("应开放(小时)", "Required (h)"),
    "open_h": ("已开放(小时)", "Open (h)"),
    "open_share": ("开放率", "Open share"),
    "rolling_share": ("近{}日开放率", "{}-day share"),
    "day_off": ("无需开放", "day off"),
    "isolation_title": ("政务网电脑连通互联网情况", "Gov PCs that can reach the internet"),
    "violated": ("违规", "VIOLATION"),
    "sealed": ("正常", "ok"),
    "reasons": ("原因", "Reasons"),
    "reported_at": ("上报时间", "Reported"),
    "isolation_summary": ("{} 台政务网电脑违规（共 {} 台上报）",
                          "{} gov PCs in violation ({} reporting)"),
    "no_violation": ("没有政务网电脑能连通互联网", "No gov PC can reach the internet"),
    "no_reports": ("最近 {} 天没有政务网电脑上报隔离检查",
                   "No gov PC reported an isolation check in the last {} days"),
}


def label(key: str, lang: str) -> str:
    pair = LABELS.get(key)
    if pair is None:
        return key
    return pair[0] if lang == "zh" else pair[1]
