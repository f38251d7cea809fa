#!/usr/bin/env bash
#
# test_flood.sh: what requests from someone without a secret cost
# (README "Failure behaviour", issue 12).
#
# 1. 4,000 envelopes that claim client admin with a MAC that does not
#    verify (anyone can make them): every one is refused, the audit log
#    gets one line per (client, reason) and [audit] refused_interval with
#    the count (not 4,000 fsynced lines), the service log a few lines a
#    second, the metrics file the count by reason.
# 2. The audit log stops taking writes (a full FIFO: the writer's first
#    write blocks):
#    - refusals are still answered at once (never queued behind the log);
#    - 600 signs of 60 KB messages wait for their lines holding only
#      their replies: the daemon's RSS grows far less than the 36 MB of
#      their requests;
#    - past [audit] max_waiting (256k here) bytes of waiting replies, a
#      sign is answered "busy" at once.

. "$(dirname "$0")/lib.sh"

: "${FLOOD:?FLOOD must name the tests/flood program}"

# rss_kb PID: the resident set of PID in KiB.
rss_kb()
{
	awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"
}

# eventually CMD...: CMD succeeds within 6 s (scaled).
eventually()
{
	local i
	for ((i = 0; i < 30 * HK_TIME_SCALE; i++)); do
		"$@" && return 0
		sleep 0.2
	done
	return 1
}

# refused_count CLIENT REASON: the sum of "items" of the audit log's
# refusal lines of CLIENT and REASON.
refused_count()
{
	"$HK_PYTHON" - "$T/audit.log" "$1" "$2" <<'PY'
import json, sys
n = 0
for line in open(sys.argv[1]):
    o = json.loads(line)
    if o.get("client") == sys.argv[2] and o.get("key") == sys.argv[3] \
            and o.get("op") == "unauthenticated":
        n += o["items"]
print(n)
PY
}

hk_setup
hk_start || exit 1
expect_exit 0 hk create fk
N=4000

note "---- $N envelopes with a bad MAC for client admin"
audit0=$(wc -c <"$T/audit.log")
log0=$(wc -l <"$HK_LOG")
logb0=$(wc -c <"$HK_LOG")
t0=$(date +%s)
if "$FLOOD" unauth "$T/admin.cred" "$HK_SOCK_URL" "$N" >"$T/flood.out" \
    2>"$T/flood.err"; then
	ok "every one refused: $(cat "$T/flood.out")"
else
	fail "flood: $(cat "$T/flood.out" "$T/flood.err")"
fi
secs=$(($(date +%s) - t0 + 1))
got=0
for ((i = 0; i < 30 * HK_TIME_SCALE; i++)); do
	got=$(refused_count admin bad-mac)
	[ "$got" -eq "$N" ] && break
	sleep 0.2
done
check "the audit log counts all $N refusals of (admin, bad-mac): $got" \
    test "$got" -eq "$N"
lines=$(grep -c '"key":"bad-mac"' "$T/audit.log")
check "in at most one line a second ($lines lines in ${secs}s)" \
    test "$lines" -le $((secs + 2))
audit_bytes=$(($(wc -c <"$T/audit.log") - audit0))
log_lines=$(($(wc -l <"$HK_LOG") - log0))
log_bytes=$(($(wc -c <"$HK_LOG") - logb0))
note "audit log: $audit_bytes bytes for $N refusals;" \
    "service log: $log_lines lines, $log_bytes bytes"
check "under 1 audit byte a refusal ($audit_bytes bytes / $N)" \
    test "$audit_bytes" -lt "$N"
check "the service log says a few lines a second ($log_lines in ${secs}s)" \
    test "$log_lines" -le $((12 * (secs + 1)))
check "the service log says how many it left out" \
    grep -q 'more refusals not logged' "$HK_LOG"
check "the metrics file counts them by reason" eventually \
    grep -q "^hsmkey_refused_total{reason=\"bad-mac\"} $N\$" "$T/hsmkey.prom"

note "---- 300 envelopes claiming 100 client ids that do not exist"
"$FLOOD" unauth "$T/admin.cred" "$HK_SOCK_URL" 300 100 >"$T/flood.out" \
    2>"$T/flood.err"
check "all refused: $(cat "$T/flood.out")" \
    grep -q '^300 sent, 300 refused' "$T/flood.out"
sleep $((2 * HK_TIME_SCALE))
n_ids=$(grep -c '"key":"unknown-client"' "$T/audit.log")
n_rest=$(grep -c '"client":"?",.*"key":"other"' "$T/audit.log")
check "at most 32 lines an interval ($n_ids named, $n_rest for the rest)" \
    test "$n_ids" -le 62 -a "$n_rest" -ge 1
expect_exit 0 hk pubkey hsmkey-audit --out "$T/audit.pem"
hk_stop
expect_exit 0 "$HSMKEY" audit verify "$T/audit.log" --pubkey "$T/audit.pem"

note "---- the audit log stops taking writes"
FIFO=$T/stuck.fifo
mkfifo "$FIFO"
exec 3<>"$FIFO"
head -c 65536 /dev/zero >&3 # full: the writer's first write blocks
sed -e "s|^path = $T/audit.log\$|path = $FIFO\\nmax_waiting = 256k|" \
    "$T/hsmkeyd.conf" >"$T/stuck.conf"
# under ASan, memory freed is held in quarantine, not used again, and the
# slow unwinding lib.sh asks for (for the leak check) takes ~30 ms a
# request: both off for this daemon, which is about memory and speed
HK_DAEMON_ASAN_OPTIONS=${HK_DAEMON_ASAN_OPTIONS:+$HK_DAEMON_ASAN_OPTIONS:quarantine_size_mb=0:fast_unwind_on_malloc=1:detect_leaks=0} \
    hk_start "$T/stuck.conf" || exit 1
if "$FLOOD" unauth "$T/admin.cred" "$HK_SOCK_URL" 200 >"$T/flood.out" \
    2>"$T/flood.err"; then
	ok "refusals answered while the log is stuck: $(cat "$T/flood.out")"
else
	fail "refusals wait for the stuck log: $(cat "$T/flood.out")"
fi
rss0=$(rss_kb "$HK_PID")
for ((i = 0; i < 20; i++)); do
	"$FLOOD" waiting "$T/admin.cred" "$HK_SOCK_URL" fk 30 1 60000 300 \
	    >>"$T/waiting.out" 2>>"$T/waiting.err"
done
rss1=$(rss_kb "$HK_PID")
note "RSS ${rss0} KiB -> ${rss1} KiB after 600 signs of 60 KB wait" \
    "for the log ($(sort "$T/waiting.out" | uniq -c | tr -s ' \n' ' '))"
check "no sign was answered while its line waits" \
    test "$(grep -c '^ok=0 busy=0 other=0 none=30$' "$T/waiting.out")" -eq 20
if hk_asan_build; then
	# ASan's allocator keeps memory freed in one thread for that thread:
	# its RSS says little about what is held (measured in the plain build)
	note "ASan build: RSS not checked (+$((rss1 - rss0)) KiB)"
else
	check "waiting replies do not keep their requests (RSS +$((rss1 - rss0)) KiB, requests 36000 KiB)" \
	    test $((rss1 - rss0)) -lt 18000
fi
"$FLOOD" waiting "$T/admin.cred" "$HK_SOCK_URL" fk 200 5 32 10000 \
    >"$T/busy.out" 2>"$T/busy.err"
busy=$(sed -n 's/.*busy=\([0-9]*\).*/\1/p' "$T/busy.out")
note "200 batches of 5 signatures: $(cat "$T/busy.out")"
check "past max_waiting, signs are answered busy at once ($busy of 200)" \
    test "${busy:-0}" -ge 20
cat <&3 >/dev/null &
reader=$!
HK_PIDS+=("$reader")
hk_stop
kill "$reader" 2>/dev/null
wait "$reader" 2>/dev/null
exec 3>&-
hk_finish
