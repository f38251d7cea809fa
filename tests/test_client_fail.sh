#!/usr/bin/env bash
#
# test_client_fail.sh: clients that fail fast and clearly (issue 12).
#   - nothing listens (ipc, tcp): hsmkey exits 5 after its connect timeout
#     (3 s; --connect-timeout 1: 1 s), long before its 30 s reply timeout,
#     with one line "cannot reach URL: nothing answers ...";
#   - hsmkeyd killed (SIGKILL) while a sign is in flight (the module makes
#     C_Sign take 1.5 s): exit 5 within about the connect timeout, one line
#     "connection to URL lost with the request in flight";
#   - hsmkeyd stopped (SIGSTOP) while a sign is in flight: the connection
#     stays open, so it is the reply timeout (--timeout 1.5, under REQ's
#     2 s resend interval: a resend's path in nanomsg leaks, see
#     test_busy.sh): exit 5 after 1.5 s, one line "no reply from URL
#     within 1.5 s: connected, but ...";
#     a new CLI against the stopped daemon (no handshake) is "cannot
#     reach"; after SIGCONT the daemon serves again.
# Each bound is checked with a margin for a loaded machine.

. "$(dirname "$0")/lib.sh"

hk_faultp11
hk_setup --tcp
fault_rules '# none yet'
hk_start || exit 1
MSG=$T/msg
printf 'sign me, then die\n' >"$MSG"
expect_exit 0 hk create ck

# run_ms CMD...: hk_run CMD; HK_MS gets its wall time in ms.
run_ms()
{
	local t0=${EPOCHREALTIME/./}
	hk_run "$@"
	HK_MS=$(((${EPOCHREALTIME/./} - t0) / 1000))
}

# expect_fast_fail MIN_MS MAX_MS PATTERN: the last command exited 5 in
# MIN_MS..MAX_MS with one line of stderr matching PATTERN (grep -E).
expect_fast_fail()
{
	if [ "$HK_RC" -eq 5 ] && [ "$HK_MS" -ge "$1" ] &&
	    [ "$HK_MS" -le "$2" ]; then
		ok "exit 5 after $HK_MS ms (want $1..$2)"
	else
		hk_run_failed "exit $HK_RC after $HK_MS ms, want 5 in $1..$2 ms"
	fi
	expect_one_line_error
	check "the error says: $3" grep -qE -- "$3" "$T/err"
}

note "---- nothing listens"
for url in "ipc://$T/nothing.sock" "tcp://127.0.0.1:$(hk_free_port)"; do
	run_ms hk --connect "$url" health
	expect_fast_fail 2900 6000 "^hsmkey: cannot reach $url: nothing answers"
	note "nothing at $url: exit $HK_RC after $HK_MS ms"
done
run_ms hk --connect "ipc://$T/nothing.sock" --connect-timeout 1 sign ck \
    --in "$MSG"
expect_fast_fail 900 4000 "within 1 s"
expect_exit 2 hk --connect-timeout 0 health
expect_one_line_error

# in_flight SIGNAL TIMEOUT: a sign (1.5 s in the module) started, SIGNAL
# sent to hsmkeyd 0.5 s later; waits for the CLI (at most 15 s), leaving
# its exit status in HK_RC, its wall time in HK_MS, its stderr in $T/err.
in_flight()
{
	local sig=$1 tmo=$2 pid t0 i
	fault_rules 'delay C_Sign 1500ms'
	t0=${EPOCHREALTIME/./}
	hk --timeout "$tmo" sign ck --in "$MSG" >"$T/out" 2>"$T/err" &
	pid=$!
	HK_PIDS+=("$pid")
	sleep 0.5
	kill "-$sig" "$HK_PID"
	for ((i = 0; i < 150; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		kill -KILL "$pid"
		fail "hsmkey still waiting 15 s after SIG$sig of hsmkeyd"
	fi
	wait "$pid"
	HK_RC=$?
	hk_forget_pid "$pid"
	HK_MS=$(((${EPOCHREALTIME/./} - t0) / 1000))
	HK_ERR=$(cat "$T/err")
}

note "---- hsmkeyd killed with a sign in flight"
in_flight KILL 30
rc=$HK_RC
hk_wait_exit "$HK_PID" 5 # reaps the daemon (its status in HK_RC)
HK_RC=$rc
# 0.5 s before the kill, then the 3 s connect timeout
expect_fast_fail 3000 7000 \
    "^hsmkey: connection to ipc://$T/hsmkey.sock lost with the request in flight"
note "SIGKILL: exit $HK_RC after $HK_MS ms: $HK_ERR"

note "---- hsmkeyd stopped with a sign in flight"
hk_start || exit 1
in_flight STOP 1.5
expect_fast_fail 1400 5000 \
    "^hsmkey: no reply from ipc://$T/hsmkey.sock within 1.5 s: connected, but"
note "SIGSTOP: exit $HK_RC after $HK_MS ms: $HK_ERR"
run_ms hk health
expect_fast_fail 2900 6000 "cannot reach ipc://$T/hsmkey.sock"
note "a new CLI against the stopped hsmkeyd: exit $HK_RC after $HK_MS ms"
kill -CONT "$HK_PID"
fault_rules '# none'
expect_exit 0 hk sign ck --in "$MSG"
hk_stop

hk_finish
