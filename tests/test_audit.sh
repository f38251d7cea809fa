#!/usr/bin/env bash
#
# test_audit.sh: the audit log (README "Audit log").  After a mix of
# creates, signs, rotates, denied and unauthenticated requests the log has
# a line for each, every received signature has its receipt, and
# `hsmkey audit verify` passes (with --pubkey, with the service's key, and
# chain-only with a warning).  Changing one byte of a line, deleting a
# line, inserting one or swapping two each make it exit 1 naming the line.
# SIGHUP and [audit] max_size rotate the log and the chain goes on across
# the files.

. "$(dirname "$0")/lib.sh"

hk_setup
hk_start || exit 1

LOG=$T/audit.log
MSG=$T/msg
printf 'audit me\n' >"$MSG"

# receipt SIGTEXT: the "sigs" value of a one-signature sign.
receipt()
{
	printf '%s' "${1##*:}" | base64 -d | sha256sum | cut -d' ' -f1
}

# has_line JSON-FRAGMENT...: some line of $LOG holds every fragment.
has_line()
{
	"$HK_PYTHON" - "$LOG" "$@" <<'PY'
import sys
lines = open(sys.argv[1]).read().splitlines()
sys.exit(0 if any(all(f in l for f in sys.argv[2:]) for l in lines) else 1)
PY
}

note "---- a mix of requests"
expect_exit 0 hk create ak
expect_exit 0 hk pubkey hsmkey-audit --out "$T/audit-v1.pem"
sigs=()
for i in 1 2 3; do
	expect_exit 0 hk sign ak --in "$MSG"
	sigs+=("$HK_OUT")
done
expect_exit 0 hk rotate ak --expect 1
expect_exit 0 hk sign ak --in "$MSG"
sigs+=("$HK_OUT")
expect_exit 0 hk client add bob --grant sign:ak --out "$T/bob.cred"
expect_exit 3 "$HSMKEY" --credentials "$T/bob.cred" rotate ak
expect_exit 3 "$HSMKEY" --credentials "$T/bob.cred" sign other --in "$MSG"
expect_exit 0 "$HSMKEY" --credentials "$T/bob.cred" sign ak --in "$MSG"
sigs+=("$HK_OUT")
# nobody signs with the audit key: it would forge checkpoints
expect_exit 3 hk sign hsmkey-audit --in "$MSG"
check "the refusal names the audit key" grep -q hsmkey-audit "$T/err"
sed -e 's|^\([[:space:]]*id[[:space:]]*=\).*|\1 mallory|' \
    "$T/admin.cred" >"$T/mallory.cred"
chmod 600 "$T/mallory.cred"
expect_exit 3 "$HSMKEY" --credentials "$T/mallory.cred" list

note "---- every event has its line"
check "create is logged" has_line '"client":"admin"' '"op":"create"' \
    '"key":"ak"' '"version":1' '"status":"OK"'
check "rotate is logged" has_line '"op":"rotate"' '"key":"ak"' \
    '"version":2' '"status":"OK"'
check "client add is logged" has_line '"op":"client-add"' '"key":"bob"'
check "a denied rotate is logged" has_line '"client":"bob"' \
    '"op":"rotate"' '"status":"PERMISSION_DENIED"'
check "a denied sign is logged" has_line '"client":"bob"' '"op":"sign"' \
    '"key":"other"' '"status":"PERMISSION_DENIED"'
check "a sign with the audit key is logged as denied" \
    has_line '"op":"sign"' '"key":"hsmkey-audit"' \
    '"status":"PERMISSION_DENIED"'
# refusals before the MAC are counted, one line per client and reason
# when [audit] refused_interval (1 s here) ends
eventually()
{
	local i
	for i in $(seq 1 $((30 * HK_TIME_SCALE))); do
		"$@" && return 0
		sleep 0.2
	done
	return 1
}
# items_sum FIELD... N: the "items" of the lines with every FIELD add up
# to N
items_sum()
{
	"$HK_PYTHON" - "$LOG" "$@" <<'PY'
import json, sys
want, fields = int(sys.argv[-1]), sys.argv[2:-1]
n = sum(json.loads(l)["items"] for l in open(sys.argv[1])
        if all(f in l for f in fields))
sys.exit(0 if n == want else 1)
PY
}
# mallory's one command is two requests: the one naming secret 1, then,
# refused, the same naming none (a secret pasted under an old number)
check "an unknown client is counted, both its requests" eventually \
    items_sum '"client":"mallory"' '"op":"unauthenticated"' \
    '"key":"unknown-client"' '"status":"UNAUTHENTICATED"' 2
for s in "${sigs[@]}"; do
	r=$(receipt "$s")
	check "signature v$(sig_version "$s") has its receipt ${r:0:12}..." \
	    has_line "\"sigs\":\"$r\"" '"op":"sign"' '"items":1'
done
check "the start checkpoint is line 1" \
    grep -q -E '^\{"seq":1,"time":"[^"]*","op":"checkpoint","key":"hsmkey-audit","version":1,' "$LOG"
check "the log is mode 0600" test "$(stat -c %a "$LOG")" = 600
if grep -q -i -e "$(cred_value "$T/bob.cred" secret)" "$LOG"; then
	fail "a client secret is in the audit log"
else
	ok "no client secret in the audit log"
fi

note "---- verify while the service runs"
# with credentials: the service's key (fetched per checkpoint version)
expect_exit 0 hk audit verify "$LOG"
check "verify says intact" grep -q '^intact: ' "$T/out"
expect_exit 0 hk --json audit verify "$LOG"
check "--json verify parses" json_ok <"$T/out"
check "--json verify says intact" grep -q '"intact":true' "$T/out"
# no credentials: the chain only, and a warning
expect_exit 0 env -u HSMKEY_CREDENTIALS "$HSMKEY" audit verify "$LOG"
check "chain-only verify warns that checkpoints were not verified" \
    grep -q 'not verified' "$T/err"

note "---- rotation by SIGHUP"
kill -HUP "$HK_PID"
for ((i = 0; i < 50; i++)); do
	ls "$T"/audit.log.* >/dev/null 2>&1 && [ -s "$LOG" ] && break
	sleep 0.1
done
rotated=$(ls "$T"/audit.log.* 2>/dev/null | head -n 1)
check "SIGHUP renamed the log" test -n "$rotated"
expect_exit 0 hk sign ak --in "$MSG"
sigs+=("$HK_OUT")
check "the new file starts with a log-rotate line naming the old one" \
    grep -q -E "^\\{\"seq\":[0-9]+,\"time\":\"[^\"]*\",\"client\":\"-\",\"secret\":0,\"op\":\"log-rotate\",\"key\":\"$(basename "$rotated")\"" "$LOG"
check "the old file ends with a checkpoint" \
    sh -c "tail -n 1 '$rotated' | grep -q '\"op\":\"checkpoint\"'"
expect_exit 0 hk audit verify "$rotated" "$LOG" --pubkey "$T/audit-v1.pem"
# the new file alone is a continuation, but no checkpoint signs it yet
expect_exit 1 hk audit verify "$LOG" --pubkey "$T/audit-v1.pem"
check "the new file alone reads as a continuation" \
    grep -q 'continues a chain' "$T/err"
check "... with no checkpoint verified" \
    grep -q 'no checkpoint signature verified' "$T/err"
expect_exit 1 hk audit verify "$LOG" "$rotated" --pubkey "$T/audit-v1.pem"
check "files in the wrong order: the first does not end with a checkpoint" \
    grep -q "$(basename "$LOG"):[0-9]*: a rotated file .* not in order" \
    "$T/err"

hk_stop
cat "$rotated" "$LOG" >"$T/all.log"
check "the clean stop ended the log with a checkpoint" \
    sh -c "tail -n 1 '$LOG' | grep -q '\"op\":\"checkpoint\"'"

note "---- offline verify of the whole log"
expect_exit 0 "$HSMKEY" audit verify "$T/all.log" --pubkey "$T/audit-v1.pem"
check "every checkpoint verified" \
    grep -q -E "[1-9][0-9]* checkpoints?, [1-9][0-9]* signatures? verified" "$T/out"
openssl ecparam -name prime256v1 -genkey -noout -out "$T/other.key" 2>/dev/null
openssl ec -in "$T/other.key" -pubout -out "$T/other.pem" 2>/dev/null
expect_exit 1 "$HSMKEY" audit verify "$T/all.log" --pubkey "$T/other.pem"
check "another key: the first checkpoint is named (line 1)" \
    grep -q 'all.log:1: checkpoint signature does not verify' "$T/err"

note "---- tampering, on copies"
nlines=$(wc -l <"$T/all.log")
mid=$((nlines / 2))
# tamper MODE N OUT: a copy of all.log with line N changed (one byte of
# its time, so that the line keeps its shape), deleted, duplicated
# after N+1, or swapped with line N+1.
tamper()
{
	"$HK_PYTHON" - "$T/all.log" "$@" <<'PY'
import sys
src, mode, n, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
lines = open(src, "rb").read().split(b"\n")[:-1]
i = n - 1
if mode == "byte":
    l = bytearray(lines[i])
    p = l.index(b'"time":"') + len('"time":"') + 22   # last ms digit
    l[p] = ord("0") + (l[p] - ord("0") + 1) % 10
    lines[i] = bytes(l)
elif mode == "hex":
    l = bytearray(lines[i])
    p = l.index(b'"prev":"') + len('"prev":"') + 5
    l[p] = ord("a") if l[p] != ord("a") else ord("b")
    lines[i] = bytes(l)
elif mode == "delete":
    del lines[i]
elif mode == "insert":
    lines.insert(i + 1, lines[i])
elif mode == "swap":
    lines[i], lines[i + 1] = lines[i + 1], lines[i]
open(out, "wb").write(b"\n".join(lines) + b"\n")
PY
}

# expect_damaged DESC FILE LINE...: audit verify exits 1 and its message
# names FILE:N for one of the LINEs given, or "line N".
expect_damaged()
{
	local desc=$1 file=$2 l hit=0
	shift 2
	expect_exit 1 "$HSMKEY" audit verify "$file" \
	    --pubkey "$T/audit-v1.pem" || return 1
	for l in "$@"; do
		if grep -q -E "$(basename "$file"):$l:|line $l[^0-9]" "$T/err"; then
			hit=1
		fi
	done
	if [ "$hit" -eq 1 ]; then
		ok "$desc: named ($(head -n 1 "$T/err"))"
	else
		fail "$desc: lines $* not named: $(cat "$T/err")"
	fi
}

for n in 1 2 "$mid" "$((nlines - 1))" "$nlines"; do
	tamper byte "$n" "$T/t-byte-$n.log"
	expect_damaged "one byte of line $n changed" "$T/t-byte-$n.log" \
	    "$n" "$((n + 1))"
	tamper hex "$n" "$T/t-hex-$n.log"
	expect_damaged "a hex digit of line $n changed" "$T/t-hex-$n.log" \
	    "$n" "$((n + 1))"
done
for n in 2 "$mid" "$((nlines - 1))"; do
	tamper delete "$n" "$T/t-del-$n.log"
	expect_damaged "line $n deleted" "$T/t-del-$n.log" "$n"
done
for n in 1 "$mid" "$((nlines - 2))"; do
	tamper insert "$n" "$T/t-ins-$n.log"
	expect_damaged "a line inserted after line $((n + 1))" \
	    "$T/t-ins-$n.log" "$((n + 1))" "$((n + 2))"
done
for n in 1 "$mid" "$((nlines - 1))"; do
	tamper swap "$n" "$T/t-swap-$n.log"
	expect_damaged "lines $n and $((n + 1)) swapped" "$T/t-swap-$n.log" \
	    "$n" "$((n + 1))"
done
head -c -20 "$T/all.log" >"$T/t-torn.log"
expect_damaged "a torn last line" "$T/t-torn.log" "$nlines"
printf '{"seq":1,"time":"2024-01-01T00:00:00.000Z","op":"x","seq":2}\n' \
    >"$T/t-shape.log"
expect_exit 1 "$HSMKEY" audit verify "$T/t-shape.log"
check "an unknown shape is refused with its line" \
    grep -q 't-shape.log:1: not a valid audit line' "$T/err"
expect_exit 2 "$HSMKEY" audit verify "$T/no-such.log"
expect_exit 2 "$HSMKEY" audit verify

note "---- rotation by size, across many files"
sed -i -e 's|^\[audit\]$|[audit]\nmax_size = 4096\ncheckpoint_every = 5|' \
    "$T/hsmkeyd.conf"
hk_start || exit 1
for i in $(seq 1 30); do
	hk sign ak --in "$MSG" >/dev/null 2>&1 || fail "sign $i"
done
hk_stop
nfiles=$(ls "$T"/audit.log* | wc -l)
check "max_size rotated the log several times ($nfiles files)" \
    test "$nfiles" -ge 4
# oldest first: by the seq of each file's first line
files=$("$HK_PYTHON" - "$T" <<'PY'
import glob, json, sys
fs = glob.glob(sys.argv[1] + "/audit.log*")
print(" ".join(sorted(fs, key=lambda f: json.loads(open(f).readline())["seq"])))
PY
)
# shellcheck disable=SC2086
expect_exit 0 "$HSMKEY" audit verify $files --pubkey "$T/audit-v1.pem"
check "the chain holds across $nfiles files" grep -q '^intact: ' "$T/out"
check "checkpoints every 5 lines" test \
    "$(cat $files | grep -c '"op":"checkpoint"')" -ge 10

hk_finish
