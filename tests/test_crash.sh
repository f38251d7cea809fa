#!/usr/bin/env bash
#
# test_crash.sh: crash consistency of create and rotate.  For each crash
# point hsmkeyd-hooked (the test build, service/testhooks.h) kills itself
# with SIGKILL (HSMKEYD_TEST_CRASH_AT) in the
# middle of the operation; after a restart without the variable the
# service must have repaired or rolled back:
#   create:*      the key is absent (and can be made again) or complete;
#   rotate:intent, rotate:keygen
#                 the commit was not reached: v2 was not made (a design
#                 that rolls forward instead must leave it complete);
#   rotate:commit the commit was reached: v2 exists, complete, primary.
# In every case describe lists no half-made version, signing works, and
# the token holds no object of a rolled-back version (label prefix
# "hsmkey:<name>:v<N>").

. "$(dirname "$0")/lib.sh"

hk_setup

MSG=$T/msg
printf 'crash me\n' >"$MSG"

# crash_run POINT CMD...: starts hsmkeyd with the crash point, runs CMD
# (which must fail: the service dies under it) and asserts the daemon died
# of SIGKILL.
crash_run()
{
	local point=$1 pid
	shift
	HSMKEYD=$HSMKEYD_HOOKED HSMKEYD_TEST_CRASH_AT=$point hk_start ||
	    return 1
	pid=$HK_PID
	expect_fail "$@"
	if hk_wait_exit "$pid" 15; then
		if [ "$HK_RC" -eq 137 ]; then
			ok "$point: hsmkeyd died of SIGKILL"
		else
			fail "$point: hsmkeyd exited $HK_RC, want 137 (SIGKILL)"
		fi
	else
		fail "$point: hsmkeyd still running: crash point not reached"
		kill -KILL "$pid" 2>/dev/null
		hk_wait_exit "$pid" 5
	fi
}

# pair_count NAME V: objects labelled hsmkey:NAME:vV (one: the private
# key; the public key is in the key's record).
pair_count()
{
	token_label_count "hsmkey:$1:v$2"
}

# check_complete NAME V: version V of NAME has its key pair and verifies.
check_complete()
{
	local name=$1 v=$2
	check "$name v$v: its private key in the token" \
	    test "$(pair_count "$name" "$v")" -eq 1
	expect_exit 0 hk pubkey "$name" --version "$v" --out "$T/$name.v$v.pem"
}

# check_token_matches NAME: every hsmkey:NAME:v<N> object belongs to a
# version that describe lists, one each.
check_token_matches()
{
	local name=$1 versions labels l v
	versions=$(key_versions "$name" | sed -n -e 's/^v\([0-9]*\) .*/\1/p')
	labels=$(token_labels_with_prefix "hsmkey:$name:v" | sort | uniq -c)
	while read -r n l; do
		[ -n "$l" ] || continue
		v=${l##*:v}
		if ! grep -qx "$v" <<<"$versions"; then
			fail "$name: orphan token objects: $n x $l"
		elif [ "$n" -ne 1 ]; then
			fail "$name: $n objects labelled $l, want 1"
		else
			ok "$name: $l is the private key of a known version"
		fi
	done <<<"$labels"
}

# sign_works NAME V: the primary signs, as version V, and it verifies.
sign_works()
{
	local name=$1 v=$2
	expect_exit 0 hk sign "$name" --in "$MSG" || return 1
	check "$name signs with v$v" test "$(sig_version "$HK_OUT")" = "$v"
	expect_exit 0 hk verify "$name" --sig "$HK_OUT" --in "$MSG"
}

note "==== create"
for point in create:intent create:keygen; do
	name=c-${point#*:}
	note "---- $point"
	crash_run "$point" hk --timeout 3 create "$name"
	hk_start || exit 1
	expect_exit 0 hk health
	hk describe "$name" >"$T/out" 2>"$T/err"
	rc=$?
	if [ "$rc" -eq 4 ]; then
		ok "$point: $name rolled back (describe: not found)"
		check "$point: no key objects left for $name" \
		    test -z "$(token_labels_with_prefix "hsmkey:$name:")"
		check "$point: no metadata left for $name" \
		    test "$(token_label_count "hsmkey-key:$name")" -eq 0
		expect_exit 0 hk create "$name"
	elif [ "$rc" -eq 0 ]; then
		ok "$point: $name rolled forward (describe works)"
	else
		fail "$point: describe $name exit $rc, want 0 or 4: $(cat "$T/err")"
	fi
	expect_versions "$name" "primary 1" "v1 active"
	check_complete "$name" 1
	check_token_matches "$name"
	sign_works "$name" 1
	expect_exit 0 hk rotate "$name" --expect 1
	sign_works "$name" 2
	hk_stop
done

note "==== rotate"
hk_start || exit 1
for point in rotate:intent rotate:keygen rotate:commit; do
	expect_exit 0 hk create "r-${point#*:}"
done
hk_stop

for point in rotate:intent rotate:keygen rotate:commit; do
	name=r-${point#*:}
	note "---- $point"
	crash_run "$point" hk --timeout 3 rotate "$name" --expect 1
	hk_start || exit 1
	expect_exit 0 hk health
	versions=$(key_versions "$name")
	if [ "$point" = rotate:commit ]; then
		expect_versions "$name" "primary 2" "v1 verify-only" "v2 active"
		check_complete "$name" 2
		sign_works "$name" 2
		next=3
	elif grep -q '^v2 ' <<<"$versions"; then
		note "$point: v2 was rolled forward"
		expect_versions "$name" "primary 2" "v1 verify-only" "v2 active"
		check_complete "$name" 2
		sign_works "$name" 2
		next=3
	else
		expect_versions "$name" "primary 1" "v1 active"
		check "$point: no objects of the rolled-back v2" \
		    test "$(pair_count "$name" 2)" -eq 0
		sign_works "$name" 1
		next=2
	fi
	check_complete "$name" 1
	check_token_matches "$name"
	# The next rotation after the repair works and numbers on.
	expect_exit 0 hk rotate "$name" --expect $((next - 1))
	sign_works "$name" "$next"
	check_token_matches "$name"
	hk_stop
done

note "==== a crash point that is never reached does nothing"
HSMKEYD=$HSMKEYD_HOOKED HSMKEYD_TEST_CRASH_AT=rotate:commit hk_start ||
    exit 1
expect_exit 0 hk health
expect_exit 0 hk sign r-intent --in "$MSG"
expect_exit 0 hk list
hk_stop

hk_finish
