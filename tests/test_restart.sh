#!/usr/bin/env bash
#
# test_restart.sh: the token is the system of record.  Keys, versions and
# states survive a clean restart and a kill -9; a second hsmkeyd on the same
# token (its own socket and config) sees the same keys and signs with them.

. "$(dirname "$0")/lib.sh"

hk_setup
hk_start || exit 1

MSG=$T/msg
printf 'persist me\n' >"$MSG"

expect_exit 0 hk create k1
expect_exit 0 hk create k2 --alg ed25519
expect_exit 0 hk create k3 --alg rsa-2048
expect_exit 0 hk sign k1 --in "$MSG"
s1v1=$HK_OUT
expect_exit 0 hk rotate k1 --expect 1
expect_exit 0 hk rotate k1 --expect 2 --stage
expect_exit 0 hk sign k1 --in "$MSG"
s1v2=$HK_OUT
expect_exit 0 hk sign k2 --in "$MSG"
s2=$HK_OUT
expect_exit 0 hk sign k3 --in "$MSG"
s3=$HK_OUT
for k in k1 k2 k3; do
	expect_exit 0 hk pubkey "$k" --out "$T/$k.before.pem"
done
expect_exit 0 hk pubkey k1 --version 3 --out "$T/k1v3.before.pem"
key_versions k1 >"$T/k1.before"

# same_keys WHAT CLIENT TAG: CLIENT (hk or hk2) lists k1, k2 and k3, with
# the public keys they had before ($T/KEY.TAG.pem).
same_keys()
{
	local what=$1 client=$2 tag=$3 k
	expect_exit 0 "$client" list
	cp "$T/out" "$T/list.txt"
	for k in k1 k2 k3; do
		check "$what: list shows $k" grep -q -w "$k" "$T/list.txt"
		expect_exit 0 "$client" pubkey "$k" --out "$T/$k.$tag.pem"
		check "$what: $k has the same public key" \
		    cmp -s "$T/$k.before.pem" "$T/$k.$tag.pem"
	done
}

# after_restart WHAT: everything made above is there, the same.
after_restart()
{
	local what=$1
	same_keys "$what" hk after
	expect_exit 0 hk pubkey k1 --version 3 --out "$T/k1v3.after.pem"
	check "$what: k1's pending v3 has the same public key" \
	    cmp -s "$T/k1v3.before.pem" "$T/k1v3.after.pem"
	expect_versions k1 "primary 2" "v1 verify-only" "v2 active" \
	    "v3 pending"
	expect_exit 0 hk verify k1 --sig "$s1v1" --in "$MSG"
	expect_exit 0 hk verify k1 --sig "$s1v2" --in "$MSG"
	expect_exit 0 hk verify k2 --sig "$s2" --in "$MSG"
	expect_exit 0 hk verify k3 --sig "$s3" --in "$MSG"
	expect_exit 0 hk sign k1 --in "$MSG"
	check "$what: k1 signs with v2" test "$(sig_version "$HK_OUT")" = 2
	expect_exit 0 hk sign k2 --in "$MSG"
	expect_exit 0 hk verify k2 --sig "$HK_OUT" --in "$MSG"
}

note "---- clean restart"
hk_stop
hk_start || exit 1
after_restart "clean restart"

note "---- restart after kill -9 of an idle service"
kill -KILL "$HK_PID"
hk_wait_exit "$HK_PID" 10
check "hsmkeyd died of SIGKILL" test "$HK_RC" -eq 137
hk_start || exit 1
after_restart "after kill -9"
FIRST=$HK_PID

note "---- a second hsmkeyd on the same token"
# its own audit log and metrics file: two services never share one chain
HK_STATE_TAG=-second hk_write_config "$T/second.conf" "ipc://$T/second.sock"
hk_start "$T/second.conf" || exit 1
SECOND=$HK_PID
hk2()
{
	"$HSMKEY" --credentials "$T/admin.cred" --connect "ipc://$T/second.sock" "$@"
}
expect_exit 0 hk2 health
same_keys "second service" hk2 second
expect_exit 0 hk2 sign k1 --in "$MSG"
sig_b=$HK_OUT
check "second service signs k1 with v2" test "$(sig_version "$sig_b")" = 2
expect_exit 0 hk verify k1 --sig "$sig_b" --in "$MSG"
expect_exit 0 hk2 verify k1 --sig "$s1v1" --in "$MSG"
expect_exit 0 hk2 sign k3 --in "$MSG"
expect_exit 0 hk verify k3 --sig "$HK_OUT" --in "$MSG"
expect_exit 0 hk sign k2 --in "$MSG"
expect_exit 0 hk2 verify k2 --sig "$HK_OUT" --in "$MSG"

# A key made by the first service after the second started: DESIGN.md
# says a second instance sees the same keys; how soon is not specified,
# so this only reports.
expect_exit 0 hk create k4
if hk2 describe k4 >/dev/null 2>&1; then
	note "the second service sees k4 at once"
else
	note "the second service does not see k4 (made after it started) yet"
fi

hk_stop "$SECOND"
hk_stop "$FIRST"

note "---- restart once more, after both ran"
hk_start || exit 1
after_restart "after two services"
expect_exit 0 hk describe k4
hk_stop

# Tokens written before public keys moved into the key records have a
# public key object per version and records without public keys: they
# must keep working, next to new versions, across restarts.
note "---- keys of older tokens (a public key object per version)"
HSMKEYD=$HSMKEYD_HOOKED HSMKEYD_TEST_PUBLIC_OBJECTS=yes hk_start || exit 1
expect_exit 0 hk create old
expect_exit 0 hk create old-ed --alg ed25519
check "old-style v1: private and public key objects" \
    test "$(token_label_count hsmkey:old:v1)" -eq 2
expect_exit 0 hk sign old --in "$MSG"
old_v1=$HK_OUT
expect_exit 0 hk sign old-ed --in "$MSG"
old_ed=$HK_OUT
expect_exit 0 hk pubkey old --out "$T/old.v1.before.pem"
hk_stop
hk_start || exit 1
expect_exit 0 hk verify old --sig "$old_v1" --in "$MSG"
expect_exit 0 hk verify old-ed --sig "$old_ed" --in "$MSG"
expect_exit 0 hk pubkey old --out "$T/old.v1.after.pem"
check "old-style v1: the same public key after restart" \
    cmp -s "$T/old.v1.before.pem" "$T/old.v1.after.pem"
expect_exit 0 hk rotate old
check "new v2 of an old-style key: one object" \
    test "$(token_label_count hsmkey:old:v2)" -eq 1
expect_exit 0 hk sign old --in "$MSG"
old_v2=$HK_OUT
check "old key signs with v2" test "$(sig_version "$old_v2")" = 2
hk_stop
hk_start || exit 1
for s in "$old_v1" "$old_v2"; do
	expect_exit 0 hk verify old --sig "$s" --in "$MSG"
done
expect_exit 0 hk pubkey old --version 1 --out "$T/old.v1.pem"
expect_exit 0 hk pubkey old --version 2 --out "$T/old.v2.pem"
check "old key: v1 and v2 public keys differ" \
    test "$(cat "$T/old.v1.pem")" != "$(cat "$T/old.v2.pem")"
check "old key: v1's public key is still the one from its object" \
    cmp -s "$T/old.v1.before.pem" "$T/old.v1.pem"
hk_stop
hk_finish
