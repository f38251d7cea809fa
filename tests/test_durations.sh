#!/usr/bin/env bash
#
# test_durations.sh: durations are at most 100 years (36525d) everywhere
# (issue 12, "Policy durations overflow").  `hsmkey policy` refuses a longer
# --rotate-every, --verify-grace or --sign-overlap with exit 2 and one line;
# the service refuses the same values sent raw (tests/policy_raw.c) with
# INVALID_ARGUMENT and changes nothing; hsmkeyd refuses such a config
# duration.  The key that was offered 18446744073709551 s (which wrapped to
# a rotation every second) still has one version after a few ticks; 100
# years exactly is accepted and rotates nothing either.

. "$(dirname "$0")/lib.sh"

: "${POLICY_RAW:?POLICY_RAW must name the policy_raw program}"

hk_setup
hk_start || exit 1

HUGE=18446744073709551 # the largest value the parser took before
MAX=$((36525 * 86400))

# dk gets the CLI's values, gk the raw ones (the longest last, so that it
# stays if accepted), mk the 100 years that are accepted
expect_exit 0 hk create dk
expect_exit 0 hk create gk
expect_exit 0 hk create mk

note "---- the CLI refuses durations over 100 years"
for opt in rotate-every verify-grace sign-overlap; do
	for v in 36526d "$((MAX + 1))" "$HUGE"; do
		expect_exit 2 hk policy dk "--$opt" "$v"
		expect_one_line_error
		check "--$opt $v: the message names the bound" \
		    grep -q 'at most 100 years' "$T/err"
	done
done
expect_exit 0 hk policy mk --rotate-every 36525d --verify-grace "$MAX"
check "100 years exactly is accepted" grep -q 'rotate-every 36525d' "$T/out"

note "---- the service refuses them sent raw"
for field in rotate_every verify_grace sign_overlap; do
	for v in "$((MAX + 1))" "$HUGE"; do
		out=$("$POLICY_RAW" "$T/admin.cred" "$HK_SOCK_URL" gk \
		    "$field" "$v" 2>&1)
		case $out in
		"INVALID_ARGUMENT the ${field} of key 'gk' may be at most 100 years"*)
			ok "raw $field $v: $out" ;;
		*) fail "raw $field $v: want INVALID_ARGUMENT, got: $out" ;;
		esac
	done
done
out=$("$POLICY_RAW" "$T/admin.cred" "$HK_SOCK_URL" mk sign_overlap "$MAX" 2>&1)
check "raw sign_overlap of 100 years exactly: OK ($out)" \
    test "${out%% *}" = OK
expect_exit 0 hk --json describe gk
check "the refused changes left verify_grace at its default (30 days)" \
    grep -q '"verify_grace_s":2592000' "$T/out"
check "... and rotate_every off" grep -q '"rotate_every_s":0' "$T/out"
expect_exit 0 hk --json describe mk
check "mk has the accepted 100 years" \
    grep -q "\"sign_overlap_s\":$MAX,\"verify_grace_s\":$MAX,\"rotate_every_s\":$MAX" \
    "$T/out"

note "---- no extra versions after a few ticks"
# the ticker runs every second; a wrapped rotate_every rotated each tick
sleep 3
expect_versions dk "primary 1" "v1 active"
expect_versions gk "primary 1" "v1 active"
expect_versions mk "primary 1" "v1 active"

note "---- a config duration over 100 years"
hk_stop
cp "$T/hsmkeyd.conf" "$T/long.conf"
printf '[keys]\nverify_grace = 36526d\n' >>"$T/long.conf"
# bounded: a hsmkeyd that took it would run on
expect_exit 2 timeout 20 "$HSMKEYD" --config "$T/long.conf" --foreground
check "hsmkeyd names the key" grep -q "verify_grace" "$T/err"

hk_finish
