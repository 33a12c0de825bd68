#!/usr/bin/env bash
# Debian packages the full test suite drives for real: Chromium (browser test), wrk (load tests), promtool (alerting rules),
# a PostgreSQL server (MLflow tracking server backend), podman with runc and debootstrap (the images, built and run; a base
# image where no registry answers). Installs only what is missing.
set -euo pipefail
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v wrk >/dev/null 2>&1 || need+=(wrk)
command -v promtool >/dev/null 2>&1 || need+=(prometheus)  # promtool checks the shipped alerting rules
{ command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; } || need+=(postgresql)
{ command -v podman >/dev/null 2>&1 || docker info >/dev/null 2>&1; } || need+=(podman)  # (a Docker engine does too)
command -v runc >/dev/null 2>&1 || need+=(runc)  # (crun, podman's default, cannot set limits on these machines' cgroups)
command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap)
if [ ${#need[@]} -eq 0 ]; then exit 0; fi
echo "installing Debian packages: ${need[*]}"
sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
