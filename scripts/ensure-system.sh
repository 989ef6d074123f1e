#!/usr/bin/env bash
# Make sure the system has what the project needs: a Python >= 3.11 with venv, and each
# `command:debian-package` given as an argument. Installs missing packages with apt-get when
# running as root; otherwise prints the exact command to run and fails.
set -euo pipefail
python=${1:-python3}
shift || true

missing=()
if ! command -v "$python" >/dev/null 2>&1; then
    missing+=(python3 python3-venv)
elif ! "$python" -c 'import sys; assert sys.version_info >= (3, 11)' 2>/dev/null; then
    echo "error: $python is $("$python" --version 2>&1); Convertly needs Python 3.11 or newer." >&2
    exit 1
elif ! "$python" -c 'import ensurepip, venv' >/dev/null 2>&1; then
    missing+=(python3-venv)
fi
for pair in "$@"; do
    cmd=${pair%%:*}
    pkg=${pair#*:}
    command -v "$cmd" >/dev/null 2>&1 || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
    echo "error: missing system packages: ${missing[*]}" >&2
    echo "run:   sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
    exit 1
fi
echo "installing system packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
