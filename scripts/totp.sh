#!/bin/sh
# totp.sh — print the current RFC 6238 TOTP code (HMAC-SHA1, 30 s, 6 digits)
# of a base32 secret, as an authenticator app would. POSIX sh + openssl only.
#
#   scripts/totp.sh SECRET            or   TOTP_SECRET=… scripts/totp.sh
#   TOTP_TIME=59 scripts/totp.sh …    code at another Unix time (testing)
#
# hsmgate accepts each code once: for a second TOTP-protected call, wait for
# the next 30-second step.
set -eu

secret=${1:-${TOTP_SECRET:-}}
if [ -z "$secret" ]; then
  echo "usage: $0 BASE32-SECRET (or set TOTP_SECRET)" >&2
  exit 2
fi
now=${TOTP_TIME:-$(date +%s)}

# base32 (RFC 4648, case and padding ignored) → hex
key=$(printf '%s' "$secret" | tr 'a-z' 'A-Z' | tr -d '= ' | awk '
  BEGIN { alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567" }
  {
    bits = 0; acc = 0; out = ""
    for (i = 1; i <= length($0); i++) {
      v = index(alphabet, substr($0, i, 1)) - 1
      if (v < 0) { print "invalid base32 character" > "/dev/stderr"; exit 1 }
      acc = acc * 32 + v; bits += 5
      if (bits >= 8) {
        bits -= 8
        byte = int(acc / 2 ^ bits)
        acc -= byte * 2 ^ bits
        out = out sprintf("%02x", byte)
      }
    }
    print out
  }')
[ -n "$key" ] || { echo "empty secret" >&2; exit 1; }

# the time step as 8 big-endian bytes, written with printf octal escapes
counter=$(printf '%016x' $((now / 30)))
bytes=''
i=0
while [ $i -lt 16 ]; do
  hex=$(printf '%s' "$counter" | cut -c$((i + 1))-$((i + 2)))
  bytes="$bytes\\$(printf '%03o' $((0x$hex)))"
  i=$((i + 2))
done

mac=$(printf "$bytes" | openssl dgst -sha1 -mac HMAC -macopt "hexkey:$key" | awk '{ print $NF }')

# dynamic truncation (RFC 4226 §5.3)
offset=$((0x$(printf '%s' "$mac" | cut -c40)))
word=$(printf '%s' "$mac" | cut -c$((offset * 2 + 1))-$((offset * 2 + 8)))
printf '%06d\n' $(((0x$word & 0x7fffffff) % 1000000))
