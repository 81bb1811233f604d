<#
.SYNOPSIS
  Install, upgrade or remove the netroom agent from this offline bundle.

.DESCRIPTION
  Run as Administrator (install.cmd does it with -ExecutionPolicy Bypass).
  Needs no network: Python comes from the bundle's python\ folder (the
  embeddable distribution) or an installed Python >= 3.8; the packages come
  from wheels\. The agent runs as the scheduled task "netroom-agent" as
  SYSTEM, at boot and restarted within 5 minutes if it stops.
  Works with Windows PowerShell 2.0 (Windows 7) and later.

  Program:  -InstallDir (default %ProgramFiles%\netroom)
  Data:     %ProgramData%\netroom: config.yaml, outbox\, host-id,
            agent.log; readable by SYSTEM and Administrators only.
  Passwords: -Credentials (the site's file from the broker's
  netroom_credentials.py, "<user>:<password>" lines; this PC's user is
  <site>/<host>), -PasswordFile (its first line; "-" reads standard input),
  or typed when asked. Never on the command line or in the environment.
  Exit codes: 0 done, 1 failed, 2 bad arguments.

.EXAMPLE
  install.cmd -Site sq-1 -HostId pc-07 -Network gov -Role room -Broker 10.1.2.3 -Credentials sq-1.txt
.EXAMPLE
  install.cmd -Site sq-1 -HostId pc-07 -Network gov -Role room -Broker 10.1.2.3 -Username sq-1/pc-07
  (asks for the password)
.EXAMPLE
  install.cmd                      (upgrade: keeps config.yaml)
.EXAMPLE
  install.cmd -Uninstall -Purge
#>
param(
    [string]$Site = "",
    [string]$Network = "",
    [string]$Role = "",
    [string]$Broker = "",
    [int]$Port = 0,
    [string]$HostId = "",
    [string]$CaFile = "",
    [string]$Username = "",
    [string]$PasswordFile = "",
    [string]$Credentials = "",
    [string]$Python = "",
    [string]$InstallDir = "",
    [switch]$NoStart,
    [switch]$Uninstall,
    [switch]$Purge
)
$ErrorActionPreference = "Stop"
$Bundle = Split-Path -Parent $MyInvocation.MyCommand.Definition
if (-not $InstallDir) { $InstallDir = Join-Path $env:ProgramFiles "netroom" }
$DataDir = Join-Path $env:ProgramData "netroom"
$Config = Join-Path $DataDir "config.yaml"
$TaskName = "netroom-agent"
$IdRe = '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$'
# A site id: the collector's sites tree and the protocol (netroom.protocol.SITE_ID_RE).
$SiteRe = '^[a-z0-9][a-z0-9-]{0,63}$'
# An MQTT user: a PC's <site>/<host> (deploy/mosquitto/netroom_credentials.py).
$UserRe = '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}(/[A-Za-z0-9][A-Za-z0-9._-]{0,63})?$'

function Fail([string]$msg) { Write-Host "install.ps1: error: $msg"; exit 1 }
function Bad([string]$msg) { Write-Host "install.ps1: error: $msg"; exit 2 }
function Say([string]$msg) { Write-Host "==> $msg" }
# Windows PowerShell turns each line a native program writes to a redirected
# stderr into an error record, which "Stop" would make fatal: run them here.
function Invoke-Native([string]$Exe, [string[]]$Arguments) {
    $old = $ErrorActionPreference
    $ErrorActionPreference = "Continue"
    try { & $Exe @Arguments 2>&1 | Out-Null } finally { $ErrorActionPreference = $old }
    return $LASTEXITCODE
}
function Get-NativeOutput([string]$Exe, [string[]]$Arguments) {
    $old = $ErrorActionPreference
    $ErrorActionPreference = "Continue"
    try { $out = & $Exe @Arguments 2>$null } finally { $ErrorActionPreference = $old }
    if ($LASTEXITCODE -ne 0) { return "" }
    return [string]$out
}

# --- validate before touching anything -------------------------------------------
$writeConfig = $false
$password = $null
if (-not $Uninstall) {
    if ($Site -or $Network -or $Role -or $Broker) {
        foreach ($n in @("Site", "Network", "Role", "Broker")) {
            if (-not (Get-Variable -Name $n -ValueOnly)) { Bad "-${n}: required with -Site/-Network/-Role/-Broker" }
        }
        if ($Site -cnotmatch $SiteRe) { Bad "-Site: must be 1-64 of a-z, 0-9 and '-' (as in the collector's sites tree), got '$Site'" }
        if (@("gov", "internet") -notcontains $Network) { Bad "-Network: must be gov or internet, got '$Network'" }
        if (@("cadre", "room", "class", "office") -notcontains $Role) { Bad "-Role: must be cadre, room, class or office, got '$Role'" }
        if ($Broker -notmatch '^[A-Za-z0-9][A-Za-z0-9.:_-]*$') { Bad "-Broker: not a host name or address: '$Broker'" }
        if ($Port -lt 0 -or $Port -gt 65535) { Bad "-Port: must be 1-65535, got $Port" }
        if ($HostId -and $HostId -notmatch $IdRe) { Bad "-HostId: must be 1-64 letters, digits, '.', '_' or '-', got '$HostId'" }
        if ($Username -and $Username -notmatch $UserRe) { Bad "-Username: must be <site>/<host> (or a plain id), got '$Username'" }
        if ($CaFile -and -not (Test-Path -LiteralPath $CaFile -PathType Leaf)) { Bad "-CaFile: no such file '$CaFile'" }
        $writeConfig = $true
    } elseif (-not (Test-Path -LiteralPath $Config)) {
        Bad "no $Config to keep: give -Site, -Network, -Role and -Broker"
    } elseif ($Credentials -or $PasswordFile -or $Username -or $HostId) {
        Bad "-Credentials, -PasswordFile, -Username and -HostId go with -Site, -Network, -Role and -Broker"
    }
    # The password: read now, before anything is touched; never from the
    # command line or the environment (both show in process lists and logs).
    if ($env:NETROOM_MQTT_PASSWORD) {
        Bad "NETROOM_MQTT_PASSWORD: not read from the environment any more: use -Credentials, -PasswordFile, or type the password when asked"
    }
    if ($Credentials -and $PasswordFile) { Bad "-Credentials: give it or -PasswordFile, not both" }
    if ($Credentials) {
        if (-not $HostId) { Bad "-Credentials: needs -HostId (the PC's line is <site>/<host>)" }
        if ($Username -and $Username -ne "$Site/$HostId") { Bad "-Username: must be $Site/$HostId with -Credentials, got '$Username'" }
        if (-not (Test-Path -LiteralPath $Credentials -PathType Leaf)) { Bad "-Credentials: no such file '$Credentials'" }
        $Username = "$Site/$HostId"
        foreach ($line in @(Get-Content -LiteralPath $Credentials)) {
            if ($line.StartsWith("${Username}:", [StringComparison]::Ordinal)) {
                $password = $line.Substring($Username.Length + 1)
                break
            }
        }
        if ($password -eq $null) { Bad "-Credentials: no line for $Username in '$Credentials'" }
    } elseif ($PasswordFile -eq "-") {
        $password = [Console]::In.ReadLine()
        if ($password -eq $null) { Bad "-PasswordFile: nothing on standard input" }
    } elseif ($PasswordFile) {
        if (-not (Test-Path -LiteralPath $PasswordFile -PathType Leaf)) { Bad "-PasswordFile: no such file '$PasswordFile'" }
        $password = @(Get-Content -LiteralPath $PasswordFile)[0]
        if ($password -eq $null) { Bad "-PasswordFile: '$PasswordFile' is empty" }
    } elseif ($writeConfig -and $Username) {
        if (-not [Environment]::UserInteractive) { Bad "-Username: give -Credentials or -PasswordFile when nobody can type the password" }
        $secure = Read-Host -AsSecureString "MQTT password for $Username"
        $bstr = [Runtime.InteropServices.Marshal]::SecureStringToBSTR($secure)
        try { $password = [Runtime.InteropServices.Marshal]::PtrToStringBSTR($bstr) }
        finally { [Runtime.InteropServices.Marshal]::ZeroFreeBSTR($bstr) }
    }
    if ($password -ne $null) {
        $password = $password.TrimEnd("`r")
        if (-not $password) { Bad "the MQTT password is empty" }
        if ($password -match '[\x00-\x1f\x7f]') { Bad "the MQTT password has a control character" }
    }
}
$admin = ([Security.Principal.WindowsPrincipal][Security.Principal.WindowsIdentity]::GetCurrent()
         ).IsInRole([Security.Principal.WindowsBuiltInRole]::Administrator)
if (-not $admin) { Fail "run as Administrator" }

function Stop-Agent {
    [void](Invoke-Native "schtasks.exe" @("/End", "/TN", $TaskName))
    # Ending the task stops run-agent.cmd; the agent under it may outlive it.
    Get-WmiObject Win32_Process | Where-Object {
        $_.ExecutablePath -and $_.ExecutablePath.StartsWith($InstallDir, [StringComparison]::OrdinalIgnoreCase)
    } | ForEach-Object { [void]$_.Terminate() }
}

if ($Uninstall) {
    Stop-Agent
    [void](Invoke-Native "schtasks.exe" @("/Delete", "/TN", $TaskName, "/F"))
    if (Test-Path -LiteralPath $InstallDir) { Remove-Item -LiteralPath $InstallDir -Recurse -Force }
    if ($Purge -and (Test-Path -LiteralPath $DataDir)) { Remove-Item -LiteralPath $DataDir -Recurse -Force }
    Say "netroom agent removed"
    exit 0
}

# --- Python --------------------------------------------------------------------------
function Test-Python([string]$exe) {
    return ((Invoke-Native $exe @("-c", "import sys; sys.exit(sys.version_info < (3, 8))")) -eq 0)
}
$embedded = Join-Path $Bundle "python\python.exe"
$mode = "venv"
if ($Python) {
    if (-not (Test-Path -LiteralPath $Python)) { Bad "-Python: no such file '$Python'" }
} elseif (Test-Path -LiteralPath $embedded) {
    $mode = "embedded"
    $Python = $embedded
} else {
    $py = Get-Command py.exe -ErrorAction SilentlyContinue
    if ($py) { $Python = Get-NativeOutput $py.Path @("-3", "-c", "import sys; print(sys.executable)") }
    if (-not $Python) {
        Fail ("no Python: build the bundle with the embeddable Python (README.md), " +
              "install Python >= 3.8 (Windows 7: 3.8 is the last), or give -Python")
    }
}
if (-not (Test-Python $Python)) { Fail "$Python is not Python >= 3.8" }

# pip runs straight from its wheel: the embeddable Python has no pip.
$pipWheel = $null
$wheels = Join-Path $Bundle "wheels"
$candidates = Get-ChildItem -Path $wheels -Filter "pip-*.whl" | Sort-Object -Descending {
    [version]($_.Name -replace '^pip-([0-9.]+)-.*$', '$1') }
foreach ($w in $candidates) {
    if ((Invoke-Native $Python @((Join-Path $w.FullName "pip"), "--version")) -eq 0) {
        $pipWheel = $w.FullName
        break
    }
}
if (-not $pipWheel) { Fail "no pip wheel in $wheels works with $Python" }

# --- install -----------------------------------------------------------------------------
Stop-Agent
if (-not (Test-Path -LiteralPath $InstallDir)) { [void](New-Item -ItemType Directory -Path $InstallDir) }
if ($mode -eq "embedded") {
    $target = Join-Path $InstallDir "python"
    if (Test-Path -LiteralPath $target) { Remove-Item -LiteralPath $target -Recurse -Force }
    Copy-Item -LiteralPath (Join-Path $Bundle "python") -Destination $target -Recurse
    # The embeddable distribution ignores site-packages until its ._pth allows it.
    foreach ($pth in (Get-ChildItem -Path $target -Filter "python*._pth")) {
        $lines = @(Get-Content -LiteralPath $pth.FullName | ForEach-Object { $_ -replace '^#\s*import site', 'import site' })
        if ($lines -notcontains "Lib\site-packages") { $lines += "Lib\site-packages" }
        Set-Content -LiteralPath $pth.FullName -Value $lines -Encoding ASCII
    }
    $targetPython = Join-Path $target "python.exe"
    $agentExe = Join-Path $target "Scripts\netroom-agent.exe"
} else {
    $target = Join-Path $InstallDir "venv"
    if (Test-Path -LiteralPath $target) { Remove-Item -LiteralPath $target -Recurse -Force }
    & $Python -m venv --without-pip $target
    if ($LASTEXITCODE -ne 0) { Fail "$Python -m venv failed" }
    $targetPython = Join-Path $target "Scripts\python.exe"
    $agentExe = Join-Path $target "Scripts\netroom-agent.exe"
}
Say "installing netroom into $target"
$env:PIP_CONFIG_FILE = "nul"  # a machine-wide pip.ini must not add an index or proxy
& $targetPython (Join-Path $pipWheel "pip") install --no-index --find-links $wheels `
    --disable-pip-version-check --no-cache-dir --upgrade --quiet pip netroom
if ($LASTEXITCODE -ne 0) { Fail "pip could not install from $wheels (no wheel for this Python/architecture?)" }

# --- data dir and config ---------------------------------------------------------------
if (-not (Test-Path -LiteralPath $DataDir)) { [void](New-Item -ItemType Directory -Path $DataDir) }
# SYSTEM and Administrators only: config.yaml may hold the MQTT password.
& icacls.exe $DataDir /inheritance:r /grant:r "*S-1-5-18:(OI)(CI)F" "*S-1-5-32-544:(OI)(CI)F" | Out-Null
if ($LASTEXITCODE -ne 0) { Fail "icacls could not restrict $DataDir" }
Copy-Item -LiteralPath (Join-Path $Bundle "config.example.yaml") -Destination (Join-Path $DataDir "config.example.yaml") -Force
$utf8 = New-Object System.Text.UTF8Encoding($false)
if ($writeConfig) {
    $mqttExtra = ""
    if ($Username) { $mqttExtra += "  username: '$Username'`n" }
    if ($password) { $mqttExtra += "  password: '" + $password.Replace("'", "''") + "'`n" }
    if ($CaFile) {
        $ca = Join-Path $DataDir "ca.crt"
        Copy-Item -LiteralPath $CaFile -Destination $ca -Force
        $mqttExtra += "  tls:`n    ca: '$ca'`n"
        if ($Port -eq 0) { $Port = 8883 }
    }
    if ($Port -eq 0) { $Port = 1883 }
    $agentExtra = ""
    if ($HostId) { $agentExtra += "  host: '$HostId'`n" }
    $text = [System.IO.File]::ReadAllText((Join-Path $Bundle "agent.yaml.in")) -replace "`r`n", "`n"
    $text = $text.Replace("@BROKER@", $Broker).Replace("@PORT@", [string]$Port)
    $text = $text.Replace("@SITE@", $Site).Replace("@NETWORK@", $Network).Replace("@ROLE@", $Role)
    $text = $text.Replace("@STATE_DIR@", $DataDir)
    $text = $text.Replace("@MQTT_EXTRA@`n", $mqttExtra).Replace("@AGENT_EXTRA@`n", $agentExtra)
    if (Test-Path -LiteralPath $Config) { Copy-Item -LiteralPath $Config -Destination "$Config.bak" -Force }
    [System.IO.File]::WriteAllText($Config, $text.Replace("`n", "`r`n"), $utf8)
    Say "wrote $Config (site $Site, $Network, $Role, broker $Broker)"
} else {
    Say "kept $Config"
}

# One round printed, not sent: proves config, Python and psutil work here.
if ((Invoke-Native $agentExe @("--config", $Config, "--once", "--print")) -ne 0) { Fail "the agent does not run with ${Config}: try `"$agentExe`" --config `"$Config`" --once --print" }

# --- the scheduled task ------------------------------------------------------------------
$runCmd = Join-Path $InstallDir "run-agent.cmd"
$cmd = [System.IO.File]::ReadAllText((Join-Path $Bundle "run-agent.cmd.in")) -replace "`r`n", "`n"
$cmd = $cmd.Replace("@AGENT_EXE@", $agentExe).Replace("@DATA_DIR@", $DataDir)
[System.IO.File]::WriteAllText($runCmd, $cmd.Replace("`n", "`r`n"), [System.Text.Encoding]::Default)
$xml = [System.IO.File]::ReadAllText((Join-Path $Bundle "netroom-agent.task.xml"))
$xml = $xml.Replace("@RUN_CMD@", [Security.SecurityElement]::Escape($runCmd))
$xml = $xml.Replace("@INSTALL_DIR@", [Security.SecurityElement]::Escape($InstallDir))
$xmlFile = Join-Path $env:TEMP "netroom-agent.task.xml"
# schtasks wants the file in the encoding its header names: UTF-16.
[System.IO.File]::WriteAllText($xmlFile, $xml, [System.Text.Encoding]::Unicode)
& schtasks.exe /Create /TN $TaskName /XML $xmlFile /F | Out-Null
$rc = $LASTEXITCODE
Remove-Item -LiteralPath $xmlFile -Force
if ($rc -ne 0) { Fail "schtasks could not register the task $TaskName" }
if (-not $NoStart) {
    & schtasks.exe /Run /TN $TaskName | Out-Null
    if ($LASTEXITCODE -ne 0) { Fail "schtasks could not start $TaskName" }
}
Say "netroom agent installed ($mode Python, task $TaskName); log: $DataDir\agent.log"
