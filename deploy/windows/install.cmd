@echo off
rem Run as Administrator. Passes every argument on to install.ps1, e.g.
rem   install.cmd -Site sq-1 -Network gov -Role room -Broker 10.1.2.3
powershell.exe -NoProfile -ExecutionPolicy Bypass -File "%~dp0install.ps1" %*
exit /b %ERRORLEVEL%
