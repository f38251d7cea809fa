#!/usr/bin/env bash
#
# test_hostile.sh: what strangers on the tcp endpoint can do (issue 12,
# "Slow peers pin memory", "Work before the MAC", "Hostile peers"),
# against a real hsmkeyd on SoftHSM (through tests/faultp11, to slow the
# token down) with peers that speak nanomsg's wire by hand
# (tests/slowpeers.c) or send hand-made requests (tests/big_requests.c):
#   - 400 peers announcing a 1 MiB frame: closed at once (over
#     [service] max_request); 400 peers sending all but one byte of the
#     largest frame the service takes: RSS grows by at most ~100 KiB each,
#     and a real client is served meanwhile, over tcp and ipc;
#   - frames announcing 1 GiB, empty frames, peers that never send the SP
#     header, 1,000 connections at once, clients killed before their reply:
#     the service keeps answering, memory and descriptors stay bounded and
#     come back;
#   - a sign batch of 1,000 SHA-384 digests fits the default max_request;
#   - with max_request = 1M: a sign of 500,000 empty items is
#     INVALID_ARGUMENT without the allocation (VmHWM), envelopes of half a
#     million fields are refused without unpacking (CPU noted);
#   - max_connections = 16: of 1,000 peers at once at most 16 + 512 get in
#     (the transport's guard shuts the tcp listener), no descriptor runs
#     out, ipc clients are served meanwhile, nanomsg does not spin, and new
#     tcp clients get in again once the peers leave; RLIMIT_NOFILE is set;
#   - a hard limit of 1000 descriptors: fewer connections, with a warning;
#     one of 200: hsmkeyd refuses to start.
# Figures are printed as notes.  Bounded: about 40 s.

. "$(dirname "$0")/lib.sh"

: "${SLOWPEERS:?SLOWPEERS must name tests/slowpeers}"
: "${BIG_REQUESTS:?BIG_REQUESTS must name tests/big_requests}"

hk_faultp11
hk_setup --tcp
fault_rules '# none yet'
hk_start || exit 1
PORT=${HK_TCP_URL##*:}
FRAME=$((64 * 1024 + 256)) # max_request + HK_ENVELOPE_OVERHEAD
printf 'signed among strangers\n' >"$T/msg"
expect_exit 0 hk create k1
expect_exit 0 hk create k384 --alg ecdsa-p384

# peers N MODE SIZE HOLD_S: slowpeers in the background; waits (bounded)
# for its "ready OPEN SHAKEN" line, left in $PEERS_READY.
peers()
{
	local i
	PEERS_OUT=$T/peers.$RANDOM
	"$SLOWPEERS" 127.0.0.1 "$PORT" "$@" >"$PEERS_OUT" 2>"$PEERS_OUT.err" &
	PEERS_PID=$!
	HK_PIDS+=("$PEERS_PID")
	for ((i = 0; i < 100; i++)); do
		grep -qs "^ready" "$PEERS_OUT" && break
		sleep 0.1
	done
	PEERS_READY=$(grep '^ready' "$PEERS_OUT")
}

# peers_done: waits for the peers to leave; $PEERS_CLOSED: how many of
# them the service closed.
peers_done()
{
	wait "$PEERS_PID"
	hk_forget_pid "$PEERS_PID"
	PEERS_CLOSED=$(sed -n -e 's/^closed //p' "$PEERS_OUT")
}

# served: a real client is answered over ipc and tcp, and signs.
served()
{
	expect_exit 0 hk health
	expect_exit 0 hk --connect "$HK_TCP_URL" health
	expect_exit 0 hk sign k1 --in "$T/msg"
}

# fds_back BASE: the daemon's descriptors come back to BASE (+2) within
# 5 s; skipped when /proc/PID/fd cannot be read.
fds_back()
{
	local i n
	for ((i = 0; i < 50; i++)); do
		n=$(proc_fds "$HK_PID")
		[ -z "$n" ] && return 0
		[ "$n" -le $(($1 + 2)) ] && break
		sleep 0.1
	done
	check "descriptors back to $n (were $1)" test "$n" -le $(($1 + 2))
}

BASE_RSS=$(proc_kb "$HK_PID" VmRSS)
BASE_FDS=$(proc_fds "$HK_PID")
note "at rest: VmRSS ${BASE_RSS} kB, ${BASE_FDS:-?} descriptors"

# -- slow peers ---------------------------------------------------------
peers 400 partial $((1024 * 1024)) 2
check "400 peers announcing 1 MiB are connected ($PEERS_READY)" \
    test "$PEERS_READY" = "ready 400 400"
peers_done
check "the service closed all 400 (over max_request): $PEERS_CLOSED" \
    test "$PEERS_CLOSED" = 400
rss=$(proc_kb "$HK_PID" VmRSS)
check "VmRSS after them: $rss kB (at rest $BASE_RSS)" \
    test $((rss - BASE_RSS)) -lt 16384

peers 400 partial "$FRAME" 4
check "400 peers hold all but a byte of a $FRAME-byte frame" \
    test "$PEERS_READY" = "ready 400 400"
sleep 0.5
rss=$(proc_kb "$HK_PID" VmRSS)
note "400 slow peers at max_request: VmRSS $rss kB, +$((rss - BASE_RSS)) kB" \
    "($(((rss - BASE_RSS) / 400)) kB a peer); $(proc_fds "$HK_PID") fds"
check "VmRSS grows by at most 100 KiB a slow peer" \
    test $((rss - BASE_RSS)) -lt $((400 * 100))
served
peers_done
check "the slow peers were not closed" test "$PEERS_CLOSED" = 0
fds_back "$BASE_FDS"

# -- hostile frames -----------------------------------------------------
peers 50 oversize $((1 << 30)) 2
peers_done
check "50 frames announcing 1 GiB: all closed ($PEERS_CLOSED)" \
    test "$PEERS_CLOSED" = 50
peers 50 empty 0 2
served
peers_done
peers 50 noshake 0 3
peers_done
check "50 peers without the SP header: closed by nanomsg ($PEERS_CLOSED)" \
    test "$PEERS_CLOSED" = 50
peers 50 hangup 300 1
peers_done
served

# -- 1,000 connections at once (max_connections 1024) -------------------
BASE_RSS=$(proc_kb "$HK_PID" VmRSS)
peers 1000 idle 0 4
check "1000 connections at once: $PEERS_READY" \
    test "$PEERS_READY" = "ready 1000 1000"
rss=$(proc_kb "$HK_PID" VmRSS)
note "1000 connections: VmRSS $rss kB (+$((rss - BASE_RSS)) kB)," \
    "$(proc_fds "$HK_PID") fds"
check "VmRSS under 1000 connections: +$((rss - BASE_RSS)) kB < 32 MiB" \
    test $((rss - BASE_RSS)) -lt 32768
served
peers_done
fds_back "$BASE_FDS"

# -- clients killed before their reply ----------------------------------
fault_rules 'delay C_Sign 300ms'
pids=()
for ((i = 0; i < 20; i++)); do
	(timeout -s KILL 0.1 "$HSMKEY" --credentials "$T/admin.cred" \
	    --connect "$HK_TCP_URL" sign k1 --in "$T/msg" >/dev/null ||
	    true) 2>/dev/null &
	pids+=("$!")
	HK_PIDS+=("$!")
done
for p in "${pids[@]}"; do
	wait "$p"
	hk_forget_pid "$p"
done
sleep 0.5
fault_rules '# healed'
served
check "the daemon is still running" kill -0 "$HK_PID"

# -- sizes ---------------------------------------------------------------
check "a sign of 1000 SHA-384 digests fits the default max_request" \
    "$BIG_REQUESTS" "$T/admin.cred" "$HK_TCP_URL" k384 batch 1000 48
head -c $((100 * 1024)) /dev/zero >"$T/100k"
expect_exit 5 hk --timeout 2 sign k1 --in "$T/100k"
check "a 100 KiB message over the default max_request: the client says the service closed the connection after it ($(head -c 160 "$T/err"))" \
    grep -q "connection closed by the service .* after a request of [0-9]* bytes (over its \[service\] max_request?)" "$T/err"
hk_stop

cat >>"$T/hsmkeyd.conf" <<EOF
[service]
max_request = 1M
EOF
hk_start || exit 1
hwm=$(proc_kb "$HK_PID" VmHWM)
check "a sign of 500,000 empty items is INVALID_ARGUMENT" \
    "$BIG_REQUESTS" "$T/admin.cred" "$HK_SOCK_URL" k1 items 500000
hwm2=$(proc_kb "$HK_PID" VmHWM)
check "... refused before it is unpacked: VmHWM +$((hwm2 - hwm)) kB" \
    test $((hwm2 - hwm)) -lt 16384
t0=$(awk '{ print $14 + $15 }' "/proc/$HK_PID/stat")
check "50 envelopes of 524,288 fields are refused" \
    "$BIG_REQUESTS" "$T/admin.cred" "$HK_SOCK_URL" k1 fields 524288 50
t1=$(awk '{ print $14 + $15 }' "/proc/$HK_PID/stat")
note "50 envelopes of 1 MiB of two-byte fields: $((t1 - t0)) ticks of CPU"
served
hk_stop

# -- the connection limit -----------------------------------------------
cat >>"$T/hsmkeyd.conf" <<EOF
[service]
max_request = 64K
max_connections = 16
EOF
hk_start || exit 1
limit=$(sed -n -e 's/.*open files: at most \([0-9]*\) .*/\1/p' "$HK_LOG")
check "the log says the descriptor limit ($limit)" test -n "$limit"
check "RLIMIT_NOFILE is $limit" \
    grep -Eq "^Max open files +$limit " "/proc/$HK_PID/limits"
# connections of every kind come and go: the guard's count must come
# back (a count that drifts up would shut the listener for good)
for m in "oversize $((1 << 20))" "empty 0" "noshake 0" "hangup 300" \
    "partial 1000" "idle 0"; do
	# shellcheck disable=SC2086 # MODE SIZE
	peers 12 $m 1
	peers_done
done
expect_exit 0 hk --connect "$HK_TCP_URL" health
peers 15 idle 0 1
check "after 72 peers of every kind, 15 of 16 get in: $PEERS_READY" \
    test "$PEERS_READY" = "ready 15 15"
peers_done
c0=$(awk '{ print $14 + $15 }' "/proc/$HK_PID/stat")
peers 1000 idle 0 3
note "1000 peers against max_connections 16: $PEERS_READY;" \
    "$(proc_fds "$HK_PID") fds"
check "at most 16 + 512 were accepted: $PEERS_READY" \
    test "${PEERS_READY##* }" -le 528
top=$(ls "/proc/$HK_PID/fd" 2>/dev/null | sort -n | tail -n 1)
if [ -n "$top" ]; then
	check "no descriptor at or over the limit: the highest is $top" \
	    test "$top" -lt "$limit"
fi
check "the log says the service is at the limit" \
    grep -q "at the limit (\[service\] max_connections)" "$HK_LOG"
expect_exit 0 hk health
expect_exit 0 hk sign k1 --in "$T/msg"
c1=$(awk '{ print $14 + $15 }' "/proc/$HK_PID/stat")
note "CPU while the peers were there: $((c1 - c0)) ticks"
check "nanomsg's accept loop did not spin: $((c1 - c0)) ticks in ~2 s" \
    test $((c1 - c0)) -lt 100
peers_done
check "the daemon survived them" kill -0 "$HK_PID"
check "no descriptor ran out" test "$(grep -c "Too many open files" "$HK_LOG")" = 0
t0=${EPOCHREALTIME/./}
while [ $((${EPOCHREALTIME/./} - t0)) -lt 20000000 ]; do
	hk --timeout 2 sign k1 --in "$T/msg" >/dev/null 2>&1 && break
	sleep 0.1
done
note "served again $(((${EPOCHREALTIME/./} - t0) / 1000)) ms after the" \
    "peers left"
served
hk_stop

# -- a hard limit lower than max_connections needs -------------------------
printf '#!/bin/sh\nulimit -n "$HK_NOFILE" && exec "%s" "$@"\n' "$HSMKEYD" \
    >"$T/lowfd.sh"
chmod 755 "$T/lowfd.sh"
sed -i -e 's/^max_connections = 16$/max_connections = 1024/' "$T/hsmkeyd.conf"
HK_NOFILE=1000 HSMKEYD=$T/lowfd.sh hk_start || exit 1
check "a hard limit of 1000 leaves room for fewer connections (a warning)" \
    grep -q "hard limit of 1000 open files leaves room for [0-9]* conn" \
    "$HK_LOG"
check "RLIMIT_NOFILE is the hard limit" \
    grep -Eq "^Max open files +1000 +1000 " "/proc/$HK_PID/limits"
served
hk_stop
HK_NOFILE=200 expect_exit 3 "$T/lowfd.sh" --config "$T/hsmkeyd.conf" \
    --foreground
check "a hard limit of 200: hsmkeyd refuses to start and says why" \
    grep -q "hard limit of 200 open files leaves no room" "$T/err"
hk_finish
