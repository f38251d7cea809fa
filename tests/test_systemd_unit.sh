#!/usr/bin/env bash
#
# test_systemd_unit.sh: dist/hsmkeyd.service (issue 12, hardening).
#   - `systemd-analyze verify` takes it without a word: a copy whose
#     ExecStart names the hsmkeyd just built (verify refuses a unit whose
#     binary is missing, and the unit names the installed path);
#   - `systemd-analyze security --offline=true` rates its exposure (the
#     figure is printed) at 2.0 or less;
#   - its SystemCallFilter= lets through every system call a real hsmkeyd
#     makes (traced with strace -f over start, ipc and tcp requests,
#     signing, rotation, a new client, the socket's group (chown),
#     metrics writes, SIGHUP audit rotation and stop), and it opens no
#     /proc file that ProcSubset=pid hides.
# The unit itself is not run: there is no systemd as PID 1 here.

. "$(dirname "$0")/lib.sh"

UNIT=${SOURCE_DIR:-$(dirname "$0")/..}/dist/hsmkeyd.service
if ! command -v systemd-analyze >/dev/null 2>&1; then
	echo "SKIP: systemd-analyze not installed (scripts/deps.sh installs" \
	    "the systemd package)"
	exit 77
fi

hk_setup --tcp
sed -e "s|^ExecStart=/usr/local/sbin/hsmkeyd |ExecStart=$HSMKEYD |" \
    "$UNIT" >"$T/hsmkeyd.service"
check "the copy's ExecStart names the built hsmkeyd" \
    grep -q -F "ExecStart=$HSMKEYD " "$T/hsmkeyd.service"

hk_run systemd-analyze verify "$T/hsmkeyd.service"
if [ "$HK_RC" -eq 0 ] && [ ! -s "$T/err" ] && [ ! -s "$T/out" ]; then
	ok "systemd-analyze verify: no error, no warning"
else
	hk_run_failed "systemd-analyze verify (exit $HK_RC)"
fi

hk_run systemd-analyze security --offline=true --no-pager "$T/hsmkeyd.service"
level=$(sed -n -e 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p' "$T/out")
note "systemd-analyze security: exposure $level (0 best, 10 worst)"
check "exposure level $level <= 2.0" awk -v l="$level" 'BEGIN { exit !(l != "" && l <= 2.0) }'

if ! command -v strace >/dev/null 2>&1; then
	echo "SKIP: strace not installed (scripts/deps.sh installs it):" \
	    "the system call filter is not checked"
	hk_finish
fi
printf '[service]\nsocket_group = daemon\n[metrics]\ninterval = 1s\n' >>"$T/hsmkeyd.conf"
HK_LOG=$T/hsmkeyd.strace.log
# LeakSanitizer cannot run under ptrace: no leak check for this daemon
ASAN_OPTIONS=${HK_DAEMON_ASAN_OPTIONS:+$HK_DAEMON_ASAN_OPTIONS:detect_leaks=0} \
    strace -f -qq -o "$T/strace.out" \
    "$HSMKEYD" --config "$T/hsmkeyd.conf" --foreground \
    >/dev/null 2>"$HK_LOG" </dev/null &
SPID=$!
HK_PIDS+=("$SPID")
for ((i = 0; i < HK_READY_TIMEOUT * 10; i++)); do
	grep -q ready "$HK_LOG" 2>/dev/null && break
	sleep 0.1
done
check "hsmkeyd under strace is ready" grep -q ready "$HK_LOG" || exit 1
DPID=$(pgrep -P "$SPID" -x hsmkeyd | head -n 1)
check "the daemon's PID under strace: ${DPID:-none}" test -n "$DPID"

MSG=$T/msg
printf 'traced\n' >"$MSG"
expect_exit 0 hk create sk
expect_exit 0 hk sign sk --in "$MSG"
SIG=$HK_OUT
expect_exit 0 hk verify sk --sig "$SIG" --in "$MSG"
expect_exit 0 hk rotate sk --expect 1
expect_exit 0 hk client add svc --grant 'sign:sk' --out "$T/svc.cred"
expect_exit 0 "$HSMKEY" --credentials "$T/svc.cred" --connect "$HK_TCP_URL" \
    sign sk --in "$MSG"
expect_exit 0 hk list
expect_exit 0 hk stats
expect_exit 0 hk health
kill -HUP "$DPID"
sleep 1.5 # a metrics write, and the audit rotation
kill -TERM "$DPID"
if hk_wait_exit "$SPID" 20; then
	check "hsmkeyd under strace stopped cleanly (exit $HK_RC)" test "$HK_RC" -eq 0
else
	fail "hsmkeyd under strace did not stop"
fi
check "SIGHUP rotated the audit log" grep -q 'rotating the audit log' "$HK_LOG"

systemd-analyze syscall-filter --no-pager >"$T/groups" 2>/dev/null
hk_run "$HK_PYTHON" "$(dirname "$0")/syscall_check.py" "$UNIT" "$T/groups" \
    "$T/strace.out"
sed -e 's/^/    /' "$T/out"
check "every system call hsmkeyd made passes the unit's filter" \
    test "$HK_RC" -eq 0
hk_finish
