"""The printable HTML report, rendered by headless Chromium (Debian `chromium`).

The report comes from the real pipeline (fleets.seeded); Chromium's DOM dump
must show the hand-computed figures of fleets.py, its PDF must be A4, and
its screenshot (kept in the test's tmp dir, e.g. for a reviewer to look at)
must be a full A4-proportioned page.
"""
from __future__ import annotations

import json
import re
import shutil
import struct
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from fleets import seeded_fixture  # noqa: F401 - the `seeded` fixture
from harness import run_cli

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def chromium(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # Every flag that would make Chromium reach out to the network is off.
    argv = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
            "--no-first-run", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", f"--user-data-dir={tmp / 'chromium-profile'}", *args]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    assert r.returncode == 0, r.stderr[-2000:]
    return r


class Tables(HTMLParser):
    """Text of every cell of every table (by id) and of elements with an id."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.ids: dict[str, str] = {}
        self._table = ""
        self._cell: list[str] | None = None
        self._open: list[tuple[str, str]] = []  # (tag, id) of elements with an id

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "table":
            self._table = a.get("id") or ""
            self.tables[self._table] = []
        elif tag == "tr":
            self.tables[self._table].append([])
        elif tag in ("td", "th"):
            self._cell = []
        if a.get("id"):
            self._open.append((tag, a["id"] or ""))
            self.ids[a["id"] or ""] = ""

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.tables[self._table][-1].append(" ".join("".join(self._cell).split()))
            self._cell = None
        if self._open and self._open[-1][0] == tag:
            self._open.pop()

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data + " ")
        for _, i in self._open:
            self.ids[i] += data


@pytest.fixture
def html_report(seeded: tuple[Path, float], tmp_path: Path) -> Path:
    out = tmp_path / "report.html"
    r = run_cli("collector.cli.main", "report", "--config", str(seeded[0]), "--format", "html",
                "--output", str(out))
    assert r.returncode == 0, r.stderr
    return out


def test_rendered_page_shows_the_hand_computed_figures(html_report: Path, tmp_path: Path
                                                      ) -> None:
    dom = chromium(tmp_path, "--dump-dom", html_report.as_uri()).stdout
    page = Tables()
    page.feed(dom)
    assert "网络室达标情况报告" in dom
    summary = {k: page.ids[f"sum-{k}"].strip()
               for k in ("total", "passing", "failing", "nodata", "unregistered")}
    assert summary == {"total": "7", "passing": "2", "failing": "5", "nodata": "0",
                       "unregistered": "1"}
    sites = {row[0].split()[-1]: row for row in page.tables["sites"][1:]}
    # Each cell: verdict, actual/required, and why it is not a pass.
    assert sites["sq-short"] == ["缺口中队 sq-short", "一支队 / 二大队", "未达标",
                                 "未达标 1/3 台 缺 2 台政务网电脑",
                                 "未达标 0/3 台 缺 3 台互联网电脑",
                                 "未达标 2/5 台 缺 3 台政务网电脑",
                                 "未达标 33.3%/50% 网络室需增 2 台政务网电脑"]
    assert sites["sq-pass"][2:] == ["达标", "达标 2/2 台", "达标 2/2 台", "达标 2/2 台",
                                    "达标 66.7%/50%"]
    assert sites["sq-waiver"][6] == "豁免 0%/50% 机房改造中"
    assert sites["sq-empty"][5:] == ["未达标 0/1 台 缺 1 台政务网电脑",
                                     "未达标 0%/50% 网络室无电脑"]
    # Grouped by unit (names), each unit's subtotal after its sites, then the total.
    assert page.tables["procurement"] == [
        ["所属单位", "站点", "需增政务网电脑(台)", "需增互联网电脑(台)"],
        ["一支队 / 一大队", "无干部中队 sq-nocadre", "1", "0"],
        ["一支队 / 一大队", "小计", "1", "0"],
        ["一支队 / 二大队", "空机房中队 sq-empty", "1", "0"],
        ["一支队 / 二大队", "缺口中队 sq-short", "5", "3"],
        ["一支队 / 二大队", "小计", "6", "3"],
        ["一支队", "小计", "7", "3"],
        ["二支队 / 三大队", "迁出中队 sq-from", "1", "0"],
        ["二支队 / 三大队", "豁免中队 sq-waiver", "1", "0"],
        ["二支队 / 三大队", "小计", "2", "0"],
        ["二支队", "小计", "2", "0"],
        ["合计", "", "9", "3"],
    ]
    # Every figure with its unit: PCs (台), %.
    assert sites["sq-pass"][3] == "达标 2/2 台"
    rollup = {row[0]: row[1:] for row in page.tables["rollup"][1:]}
    # Sites, passing, failing, no data, then per rule passing / with a verdict.
    assert rollup["一支队"] == ["支队", "4", "1/4 25%", "3", "0", "3/4 75%", "3/4 75%", "1/4 25%",
                             "2/4 50%"]
    assert page.tables["unregistered"][1][:4] == ["sq-unknown", "ghost", "政务网", "网络室"]
    # Same host names at two sites, one PC moved: no clone to fix.
    assert "克隆电脑（需修正）" in dom and page.ids["clones"].strip() == "无"


# Run in the page by Chromium: how the procurement list's rows are laid out.
LAYOUT = """<script>
const body = document.body.getBoundingClientRect();
const rows = [...document.querySelectorAll("#procurement tbody tr")].map(tr => {
  const box = tr.getBoundingClientRect(), style = getComputedStyle(tr.cells[0]);
  return {kind: tr.className, height: box.height, right: box.right,
          weight: Number(style.fontWeight), background: style.backgroundColor};
});
const out = document.createElement("pre");
out.id = "layout";
out.textContent = JSON.stringify({right: body.right, rows: rows});
document.body.appendChild(out);
</script></body>"""


def test_grouped_procurement_is_laid_out_on_the_page(html_report: Path, tmp_path: Path
                                                    ) -> None:
    """Chromium lays the grouped list out: every line on the page, subtotals
    and the total in bold, subtotals shaded apart from the sites, and the
    table within the A4 page's width."""
    probe = tmp_path / "layout.html"
    probe.write_text(html_report.read_text(encoding="utf-8").replace("</body>", LAYOUT),
                     encoding="utf-8")
    dom = chromium(tmp_path, "--window-size=1240,1754", "--dump-dom", probe.as_uri()).stdout
    page = Tables()
    page.feed(dom)
    got = json.loads(page.ids["layout"])
    rows = got["rows"]
    assert [r["kind"] for r in rows] == ["site", "unit", "site", "site", "unit", "unit",
                                         "site", "site", "unit", "unit", "total"]
    assert all(r["height"] > 0 and r["right"] <= got["right"] + 1 for r in rows)
    assert all((r["weight"] >= 600) is (r["kind"] != "site") for r in rows)
    shade = {r["background"] for r in rows if r["kind"] == "unit"}
    assert len(shade) == 1 and shade.isdisjoint(r["background"] for r in rows
                                                if r["kind"] == "site")


def test_screenshot_and_pdf_are_a4_pages(html_report: Path, tmp_path: Path) -> None:
    fonts = subprocess.run(["fc-list", ":lang=zh-cn", "family"], capture_output=True,
                           text=True, check=False).stdout
    assert fonts.strip(), "no Chinese font: Chinese would render as boxes; run scripts/setup.sh"
    png = tmp_path / "report.png"
    chromium(tmp_path, f"--screenshot={png}", "--window-size=1240,1754", html_report.as_uri())
    head = png.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", head[16:24]) == (1240, 1754)  # A4 at 150 dpi
    # A blank page compresses to a few kB; tables and Chinese text do not.
    assert png.stat().st_size > 50_000
    pdf = tmp_path / "report.pdf"
    chromium(tmp_path, "--no-pdf-header-footer", f"--print-to-pdf={pdf}", html_report.as_uri())
    boxes = set(re.findall(rb"/MediaBox \[0 0 ([\d.]+) ([\d.]+)\]", pdf.read_bytes()))
    assert boxes, "no page in the PDF"
    for w, h in boxes:  # A4 is 210 x 297 mm = 595.3 x 841.9 pt
        assert (round(float(w)), round(float(h))) in {(595, 842), (596, 842)}
