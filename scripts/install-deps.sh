#!/usr/bin/env bash
# Installs what hsmgate needs to build and run: SoftHSM2, OpenSSL, curl and
# unzip; with --test also the PostgreSQL server binaries (the tests start a
# throw-away cluster of their own) and Chromium (the approver page's test
# drives it headless). As root it uses apt-get; otherwise it says what to
# install.
set -euo pipefail

missing=()
have_softhsm=false
for p in /usr/lib/softhsm/libsofthsm2.so /usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so /usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so /usr/lib64/pkcs11/libsofthsm2.so /usr/local/lib/softhsm/libsofthsm2.so; do
  [ -e "$p" ] && have_softhsm=true
done
[ -n "${HSMGATE_PKCS11_MODULE:-}" ] && [ -e "${HSMGATE_PKCS11_MODULE}" ] && have_softhsm=true
$have_softhsm || missing+=(softhsm2)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
command -v curl >/dev/null 2>&1 || missing+=(curl)
command -v unzip >/dev/null 2>&1 || missing+=(unzip) # the attestation bundle (docs/api.md §12)
if [ "${1:-}" = "--test" ] && ! compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null && ! command -v initdb >/dev/null 2>&1; then
  missing+=(postgresql)
fi
# The approver page's test (integration/approverpage_test.go) runs Debian's chromium.
if [ "${1:-}" = "--test" ] && ! command -v chromium >/dev/null 2>&1; then
  missing+=(chromium)
fi
if ! command -v go >/dev/null 2>&1; then
  echo "Go is not installed: install Go 1.26 or newer from your distribution or go.dev." >&2
  exit 1
fi

[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing: ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
else
  echo "hsmgate needs: ${missing[*]}" >&2
  echo "  Debian/Ubuntu: sudo apt-get install -y ${missing[*]}" >&2
  echo "  Fedora:        sudo dnf install -y ${missing[*]/postgresql/postgresql-server}" >&2
  echo "  macOS:         brew install softhsm openssl curl unzip postgresql" >&2
  exit 1
fi
