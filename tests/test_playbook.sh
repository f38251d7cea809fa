#!/usr/bin/env bash
#
# test_playbook.sh: README's incident playbook, step by step, with a
# signing service running throughout.  1. rotate --emergency: the signers
# move to the new version with no failed request, every older signature
# verifies as invalid and no older version signs.  2. the key set, signed,
# lists only the new version and verifies with the keyset key.  3. stats
# and the audit log name the client that used the old versions.  4. the
# client's secret is rotated and its file replaced under the signers, the
# old secret revoked: the old file is refused, the signers go on.
# 5. destroy of the old versions: gone from the token after the delay.
# 6. audit verify passes, and every step's line carries the incident id.

. "$(dirname "$0")/lib.sh"

: "${SIGNER_LOOP:?SIGNER_LOOP must name the signer_loop program}"

hk_need_jwcrypto

DELAY=2 # [keys] destroy_delay, s
INC=INC-42
hk_setup
printf '\n[keys]\ndestroy_delay = %ss\n' "$DELAY" >>"$T/hsmkeyd.conf"
hk_start || exit 1
LOG=$T/audit.log
MSG=$T/msg
printf 'an order to pay\n' >"$MSG"

# versions NAME: "v1 STATE v2 STATE ..." on one line.
versions()
{
	key_versions "$1" | grep -v '^primary ' | tr '\n' ' '
}

# the state before the incident: v1 signed, v2 is primary, v1 verify-only
expect_exit 0 hk create payments
expect_exit 0 hk client add billing --grant 'sign:payments' \
    --grant 'verify:payments' --out "$T/billing.cred"
cp "$T/billing.cred" "$T/billing.old"
bill()
{
	hk_run "$HSMKEY" --credentials "$T/billing.old" "$@"
}
bill sign payments --in "$MSG"
sig1=$HK_OUT
expect_exit 0 hk rotate payments
bill sign payments --in "$MSG"
sig2=$HK_OUT
check "before: billing signed with v1 and v2" \
    test "$(sig_version "$sig1")$(sig_version "$sig2")" = 12
"$SIGNER_LOOP" "$T/billing.cred" payments 2 "$T/loop.stop" 60 \
    >"$T/loop.out" 2>"$T/loop.err" &
loop_pid=$!
HK_PIDS+=("$loop_pid")
sleep 1

note "---- 1. roll over"
expect_exit 0 hk rotate payments --emergency --yes --reason "$INC"
check "the new version is primary, every older one disabled" \
    test "$(versions payments)" = \
    "v1 disabled v2 disabled v3 active "
expect_exit 1 hk verify payments --sig "$sig1" --in "$MSG"
expect_exit 1 hk verify payments --sig "$sig2" --in "$MSG"
expect_exit 5 hk sign payments --version 2 --in "$MSG"
expect_exit 0 hk sign payments --in "$MSG"
check "a signer that names no version gets v3" \
    test "$(sig_version "$HK_OUT")" = 3

note "---- 2. publish the key set"
expect_exit 0 hk pubkey hsmkey-keyset --out "$T/keyset.pem"
expect_exit 0 hk jwks payments --signed --out "$T/payments.jws"
check "the signed set verifies with the keyset key" \
    "$PY" "$JWS_CHECK" verify-pem "$T/keyset.pem" "$T/payments.jws" \
    >"$T/set.json"
check "the set names v3 alone" \
    test "$(grep -o '"kid":"[^"]*"' "$T/set.json" | tr '\n' ' ')" = \
    '"kid":"payments/v3" '
expect_exit 0 hk jwks payments --out "$T/payments.jwks"
check "the unsigned set names v3 alone" \
    test "$(grep -o '"kid":"[^"]*"' "$T/payments.jwks" | tr '\n' ' ')" = \
    '"kid":"payments/v3" '
expect_exit 0 hk pubkey payments --all --out "$T/payments.pem"
check "pubkey --all is one PEM" \
    test "$(grep -c -e '-----BEGIN PUBLIC KEY-----' "$T/payments.pem")" -eq 1

note "---- 3. who still used the old versions"
expect_exit 0 hk --json stats
check "stats count signatures by v2" \
    grep -q -E '"key":"payments","version":2,"state":"disabled","signs":[1-9]' \
    "$T/out"
old_users=$(grep -E '"op":"sign","key":"payments","version":(1|2),' "$LOG" |
    sed -E 's/.*"client":"([^"]*)".*/\1/' | sort -u | tr '\n' ' ')
check "the audit log names billing as a user of v1/v2 ($old_users)" \
    test "$old_users" = "billing "

note "---- 4. new secrets for the clients that used them"
expect_exit 0 hk client rotate billing --out "$T/billing.new" --reason "$INC"
mv "$T/billing.new" "$T/billing.cred" # deployed: the signers reload it
sleep 2
expect_exit 0 hk client revoke billing --secret 1 --reason "$INC"
expect_exit 3 "$HSMKEY" --credentials "$T/billing.old" sign payments \
    --in "$MSG"
expect_one_line_error
sleep 1
signer_loop_end "$loop_pid" "$T/loop.stop" "$T/loop.out" "$T/loop.err" \
    "through the rollover and the new secret"

note "---- 5. destroy the old versions"
expect_exit 0 hk destroy payments --version 1 --reason "$INC"
expect_exit 0 hk destroy payments --version 2 --reason "$INC"
end=$((SECONDS + DELAY + 10))
while [ "$SECONDS" -le "$end" ] &&
    [ "$(versions payments)" != \
    "v1 destroyed v2 destroyed v3 active " ]; do
	sleep 0.2
done
check "v1 and v2 are destroyed after the delay" \
    test "$(versions payments)" = \
    "v1 destroyed v2 destroyed v3 active "
check "the token holds only v3 of payments" \
    test "$(token_labels_with_prefix hsmkey:payments:v | sort -u |
	tr '\n' ' ')" = "hsmkey:payments:v3 "

note "---- 6. the record"
expect_exit 0 hk audit verify "$LOG"
for op in rotate-emergency client-rotate client-revoke destroy; do
	check "the $op line carries the incident id" \
	    grep -q -E "\"op\":\"$op\".*\"reason\":\"$INC\"" "$LOG"
done
check "both destroys carry it" \
    test "$(grep -c -E '"op":"destroy".*"reason":"'"$INC"'"' "$LOG")" -eq 2

hk_finish
