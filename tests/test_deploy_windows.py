"""deploy/windows/: the contract install.ps1 relies on, checked from Linux.

Windows cannot run here, and PowerShell is not installable from Debian's
packages (its npm wrapper downloads a binary from outside the registries), so
install.ps1 is not executed. What is checked instead: the task XML against
the Task Scheduler schema's documented rules (MS-TSCH), that install.ps1
fills every placeholder of the templates it reads and ships them all, that
the config it writes (Windows paths, a quoted password) is one the agent
accepts, that the agent CLI has the options the task uses, and that the
script keeps to Windows PowerShell 2.0 (Windows 7) and to no network.
"""
from __future__ import annotations

import configparser
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from harness import REPO, run_cli

from agent import config as agent_config

WIN = REPO / "deploy" / "windows"
PS1 = (WIN / "install.ps1").read_text(encoding="utf-8")
NS = {"t": "http://schemas.microsoft.com/windows/2004/02/mit/task"}
TOKEN = re.compile(r"@[A-Z_]+@")


def duration_s(text: str) -> float:
    """An xs:duration without years/months (PT5M, P31D, PT0S) in seconds."""
    m = re.fullmatch(r"P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?", text)
    assert m and text not in ("P", "PT"), text
    d, h, mi, s = (int(g or 0) for g in m.groups())
    return d * 86400 + h * 3600 + mi * 60 + s


@pytest.fixture
def task() -> ET.Element:
    text = (WIN / "netroom-agent.task.xml").read_text(encoding="utf-8")
    text = text.replace("@RUN_CMD@", r"C:\Program Files\netroom\run-agent.cmd")
    text = text.replace("@INSTALL_DIR@", r"C:\Program Files\netroom")
    assert not TOKEN.search(text)
    # The header says UTF-16 (what install.ps1 writes); parse it as text here.
    return ET.fromstring(text.replace('encoding="UTF-16"', ""))


def test_task_runs_as_system_for_ever_and_only_once(task: ET.Element) -> None:
    assert task.findtext("t:Principals/t:Principal/t:UserId", namespaces=NS) == "S-1-5-18"
    settings = task.find("t:Settings", NS)
    assert settings is not None
    # No limit: the default ExecutionTimeLimit (PT72H) would stop the agent.
    assert duration_s(settings.findtext("t:ExecutionTimeLimit", "", NS)) == 0
    assert settings.findtext("t:MultipleInstancesPolicy", namespaces=NS) == "IgnoreNew"
    assert settings.findtext("t:DisallowStartIfOnBatteries", namespaces=NS) == "false"
    assert settings.findtext("t:StopIfGoingOnBatteries", namespaces=NS) == "false"
    # MS-TSCH 2.5.4.2: Interval 1 minute to 31 days, Count 1 to 255.
    interval = duration_s(settings.findtext("t:RestartOnFailure/t:Interval", "", NS))
    assert 60 <= interval <= 31 * 86400
    assert 1 <= int(settings.findtext("t:RestartOnFailure/t:Count", "0", NS)) <= 255
    exe = task.find("t:Actions/t:Exec", NS)
    assert exe is not None
    assert exe.findtext("t:Command", namespaces=NS) == r"C:\Program Files\netroom\run-agent.cmd"


def test_task_starts_at_boot_and_again_after_a_crash(task: ET.Element) -> None:
    triggers = task.find("t:Triggers", NS)
    assert triggers is not None
    assert triggers.find("t:BootTrigger", NS) is not None
    repeats = [duration_s(t.findtext("t:Repetition/t:Interval", "", NS))
               for t in triggers if t.find("t:Repetition", NS) is not None]
    assert repeats and all(60 <= r <= 31 * 86400 for r in repeats)
    # triggerBaseType is an xs:sequence: Enabled, StartBoundary, EndBoundary,
    # Repetition, ExecutionTimeLimit; bootTriggerType appends Delay.
    order = ["Enabled", "StartBoundary", "EndBoundary", "Repetition", "ExecutionTimeLimit",
             "Delay"]
    for trigger in triggers:
        names = [child.tag.split("}")[1] for child in trigger]
        assert names == sorted(names, key=order.index), names


@pytest.mark.parametrize("template", ["netroom-agent.task.xml", "run-agent.cmd.in",
                                      "../agent.yaml.in"])
def test_install_ps1_fills_every_placeholder(template: str) -> None:
    tokens = set(TOKEN.findall((WIN / template).read_text(encoding="utf-8")))
    assert tokens
    for token in tokens:
        assert f'.Replace("{token}' in PS1, f"install.ps1 never fills {token}"


def test_bundle_ships_what_install_ps1_reads() -> None:
    build = (WIN / "build-bundle.sh").read_text()
    read = set(re.findall(r'Join-Path \$Bundle "([^"\\]+)', PS1))
    assert read >= {"agent.yaml.in", "run-agent.cmd.in", "netroom-agent.task.xml",
                    "config.example.yaml", "wheels", "python"}
    for name in read - {"wheels", "python"}:
        assert name in build, f"build-bundle.sh does not ship {name}"


def test_config_written_on_windows_loads(tmp_path: Path) -> None:
    """agent.yaml.in filled the way install.ps1 does, with a password needing quotes."""
    password = "it's #1: {secret}"
    quoted = password.replace("'", "''")
    assert """.Replace("'", "''")""" in PS1
    text = (REPO / "deploy" / "agent.yaml.in").read_text(encoding="utf-8")
    for key, value in {"BROKER": "10.1.2.3", "PORT": "1883", "SITE": "sq-1", "NETWORK": "gov",
                       "ROLE": "room", "STATE_DIR": r"C:\ProgramData\netroom"}.items():
        text = text.replace(f"@{key}@", value)
    text = text.replace("@MQTT_EXTRA@\n", f"  username: 'sq-1'\n  password: '{quoted}'\n")
    text = text.replace("@AGENT_EXTRA@\n", "")
    path = tmp_path / "config.yaml"
    path.write_bytes(text.replace("\n", "\r\n").encode("utf-8"))  # as install.ps1 writes it
    cfg = agent_config.load(path)
    assert cfg.mqtt.password == password
    assert cfg.state_dir == "C:\\ProgramData\\netroom"


def test_state_dir_matches_the_agent_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "platform", "win32")
    monkeypatch.setenv("PROGRAMDATA", r"C:\ProgramData")
    # os.path.join joins with "/" on this Linux host, "\\" on Windows.
    assert agent_config.default_state_dir().replace("/", "\\") == "C:\\ProgramData\\netroom"
    assert '$DataDir = Join-Path $env:ProgramData "netroom"' in PS1


def test_the_agent_cli_has_what_the_task_uses() -> None:
    cfg = configparser.ConfigParser()
    cfg.read(REPO / "setup.cfg")
    assert "netroom-agent = agent.__main__:main" in cfg["options.entry_points"]["console_scripts"]
    assert r"Scripts\netroom-agent.exe" in PS1
    cmd = (WIN / "run-agent.cmd.in").read_text()
    assert '"@AGENT_EXE@" --config "@DATA_DIR@\\config.yaml"' in cmd
    usage = run_cli("agent", "--help")
    assert usage.returncode == 0
    for option in ("--config", "--once", "--print"):
        assert option in usage.stdout


def test_install_ps1_keeps_to_powershell_2_and_offline() -> None:
    """Windows 7 ships PowerShell 2.0; gov PCs have no internet."""
    newer = ["$PSScriptRoot", "Register-ScheduledTask", "New-ScheduledTask", "Expand-Archive",
             "ConvertTo-Json", "ConvertFrom-Json", "Get-CimInstance", "[ordered]", "::new(",
             " -in ", " -notin ", "Invoke-WebRequest", "Invoke-RestMethod", "-Encoding utf8"]
    code = "\n".join(line.split("#")[0] for line in PS1.splitlines())
    for construct in newer:
        assert construct not in code, construct
    assert not re.search(r"https?://", PS1)
    assert "--no-index" in PS1


def _validation_block() -> str:
    """install.ps1 from its parameters to the first change it makes (Stop-Agent's call)."""
    start = PS1.index("# --- validate before touching anything")
    end = PS1.index("# --- Python")
    return PS1[start:end]


def test_install_ps1_reads_passwords_only_from_a_file_or_a_prompt() -> None:
    """Never the command line or the environment (issue 9): -Credentials (the
    broker tool's "<user>:<password>" file), -PasswordFile (a file or "-" for
    standard input) or Read-Host -AsSecureString, all before anything changes."""
    code = "\n".join(line.split("#")[0] for line in PS1.splitlines())
    assert "[string]$Password " not in code and "[string]$Password=" not in code
    uses = re.findall(r"\$env:NETROOM_MQTT_PASSWORD\b.*", code)
    assert len(uses) == 1 and uses[0].startswith("$env:NETROOM_MQTT_PASSWORD) {"), uses
    block = _validation_block()
    assert 'Bad "NETROOM_MQTT_PASSWORD: not read from the environment' in block
    assert "Read-Host -AsSecureString" in block and "ZeroFreeBSTR" in block
    assert '$PasswordFile -eq "-"' in block and "[Console]::In.ReadLine()" in block
    assert '.StartsWith("${Username}:", [StringComparison]::Ordinal)' in block
    assert '$Username = "$Site/$HostId"' in block
    # Every assignment to $password happens while validating, none later.
    assert len(re.findall(r"\$password = ", code)) == len(re.findall(r"\$password = ", block))


def test_credentials_file_of_the_broker_tool_is_what_install_ps1_parses(
        tmp_path: Path) -> None:
    """The tool's per-site file has "<site>/<host>:<password>" lines; the user
    install.ps1 looks for is "$Site/$HostId", the rest of the line the password."""
    tool = REPO / "deploy" / "mosquitto" / "netroom_credentials.py"
    done = subprocess.run([sys.executable, str(tool), "--file", str(tmp_path / "d.json"),
                           "sync", "--pcs", "-", "--out", str(tmp_path / "out")],
                          input="sq-1,pc-07\n", capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    (line,) = (tmp_path / "out" / "sq-1.txt").read_text().splitlines()
    user = "sq-1/pc-07"
    assert line.startswith(f"{user}:")
    password = line[len(user) + 1:]  # $line.Substring($Username.Length + 1)
    assert re.fullmatch(r"[A-Za-z0-9]{24}", password)
    assert re.fullmatch(re.search(r"\$UserRe = '([^']+)'", PS1).group(1), user)  # type: ignore[union-attr]


def test_config_with_a_pc_user_loads(tmp_path: Path) -> None:
    """The user <site>/<host> in config.yaml as install.ps1 writes it."""
    text = (REPO / "deploy" / "agent.yaml.in").read_text(encoding="utf-8")
    for key, value in {"BROKER": "10.1.2.3", "PORT": "1883", "SITE": "sq-1", "NETWORK": "gov",
                       "ROLE": "room", "STATE_DIR": r"C:\ProgramData\netroom"}.items():
        text = text.replace(f"@{key}@", value)
    text = text.replace("@MQTT_EXTRA@\n", "  username: 'sq-1/pc-07'\n  password: 'a$b''c'\n")
    text = text.replace("@AGENT_EXTRA@\n", "  host: 'pc-07'\n")
    path = tmp_path / "config.yaml"
    path.write_bytes(text.replace("\n", "\r\n").encode("utf-8"))
    cfg = agent_config.load(path)
    assert (cfg.mqtt.username, cfg.mqtt.password, cfg.host) == ("sq-1/pc-07", "a$b'c", "pc-07")
