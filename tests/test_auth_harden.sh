#!/usr/bin/env bash
#
# test_auth_harden.sh: hsmkeyd disables core dumps and ptrace attach.
# The daemon runs as an unprivileged user (nobody when the test runs as
# root, else the test's own user) and the checks compare it with a control
# process of the same user, so that each would fail if hsmkeyd skipped
# setrlimit(RLIMIT_CORE, 0) or prctl(PR_SET_DUMPABLE, 0):
#   - /proc/PID/limits: "Max core file size 0 0" (the control: not 0);
#   - a non-dumpable process's /proc/PID files belong to root, not to its
#     user (the control's belong to its user);
#   - PTRACE_ATTACH by that same user is refused (the control: attached).

. "$(dirname "$0")/lib.sh"

: "${PTRACE_PROBE:?PTRACE_PROBE must name the ptrace_probe program}"

hk_setup
AS=()
uid=$(id -u)
if [ "$uid" -eq 0 ]; then
	if ! command -v setpriv >/dev/null; then
		note "setpriv missing: skipped"
		hk_finish
	fi
	chown -R 65534:65534 "$T"
	AS=(setpriv --reuid=65534 --regid=65534 --clear-groups)
	uid=65534
fi

"${AS[@]}" "$HSMKEYD" --config "$T/hsmkeyd.conf" --foreground \
    >"$T/hsmkeyd.1.out" 2>"$T/hsmkeyd.1.log" </dev/null &
pid=$!
HK_PIDS+=("$pid")
HK_PID=$pid
HK_LOG=$T/hsmkeyd.1.log
for ((i = 0; i < HK_READY_TIMEOUT * 10; i++)); do
	grep -q ready "$HK_LOG" 2>/dev/null && break
	sleep 0.1
done
check "hsmkeyd ready as uid $uid" grep -q ready "$HK_LOG"
"${AS[@]}" sleep 60 &
ctl=$!
HK_PIDS+=("$ctl")
sleep 0.2

core_limit()
{
	awk '/^Max core file size/ { print $5 " " $6 }' "/proc/$1/limits"
}
check "hsmkeyd: Max core file size 0 0 ($(core_limit "$pid"))" \
    test "$(core_limit "$pid")" = "0 0"
ulimit -c unlimited 2>/dev/null || ulimit -c 1024
kill "$ctl"
"${AS[@]}" sleep 60 &
ctl=$!
HK_PIDS+=("$ctl")
sleep 0.2
check "control process: core limit not 0 ($(core_limit "$ctl"))" \
    test "$(core_limit "$ctl")" != "0 0"

check "hsmkeyd runs as uid $uid" \
    test "$(awk '/^Uid:/ { print $2 }' "/proc/$pid/status")" = "$uid"
if [ "$uid" -ne 0 ]; then
	check "hsmkeyd is non-dumpable: /proc/$pid/environ belongs to root" \
	    test "$(stat -c %u "/proc/$pid/environ")" = 0
	check "control: /proc/$ctl/environ belongs to uid $uid" \
	    test "$(stat -c %u "/proc/$ctl/environ")" = "$uid"
	"${AS[@]}" "$PTRACE_PROBE" "$pid" >"$T/probe.out" 2>&1
	rc=$?
	check "ptrace attach to hsmkeyd as uid $uid refused: $(cat \
	    "$T/probe.out")" test "$rc" -eq 1
	"${AS[@]}" "$PTRACE_PROBE" "$ctl" >"$T/probe.out" 2>&1
	rc=$?
	check "ptrace attach to the control as uid $uid works: $(cat \
	    "$T/probe.out")" test "$rc" -eq 0
	check "hsmkeyd survived the probe" kill -0 "$pid"
else
	note "running as root: the dumpable checks need another user"
fi
kill "$ctl"
hk_stop "$pid"
hk_finish
