#!/usr/bin/env bash
#
# test_audit_verify.sh: `hsmkey audit verify --pubkey` does not call an
# unsigned log intact (issue 12).  Against logs written by a real hsmkeyd
# with [audit] checkpoint_every = 4, each case exits 1 with one line naming
# the file and line:
#   - an event deleted, every later checkpoint dropped, seq and the chain
#     recomputed (the unsigned tail is longer than --checkpoint-every);
#   - a log forged from scratch with no checkpoint (none verified);
#   - a rotated file (any but the last FILE) that does not end with a
#     checkpoint;
#   - a gap between checkpoints over --checkpoint-every lines, or over
#     --checkpoint-interval (+ 2 s) in time;
#   - an unsigned tail over those bounds, unless --allow-unsigned-tail;
# while the real log, a split at a checkpoint and a tail within the bounds
# pass.

. "$(dirname "$0")/lib.sh"

hk_setup
printf '[audit]\ncheckpoint_every = 4\n' >>"$T/hsmkeyd.conf"
hk_start || exit 1

LOG=$T/audit.log
PEM=$T/audit.pem
MSG=$T/msg
printf 'audit me\n' >"$MSG"

# verify ARGS...: the offline check with the audit key and the service's
# checkpoint_every.
verify()
{
	"$HSMKEY" audit verify --pubkey "$PEM" --checkpoint-every 4 "$@"
}

# expect_bad WHAT FILE:LINE ARGS...: verify ARGS exits 1 with one error
# line on stderr (besides warnings) that names FILE:LINE (basename; LINE
# may be a regex) and WHAT.
expect_bad()
{
	local what=$1 where=$2
	shift 2
	expect_exit 1 verify "$@" || return 1
	check "one error line" \
	    test "$(grep -c -v '^hsmkey: warning: ' "$T/err")" -eq 1
	check "names $where: $what" \
	    grep -q -E "^hsmkey: .*/$where: .*$what" "$T/err"
}

# rechain MODE IN OUT [N]: a copy of IN with its seq and prev recomputed,
# as a forger without the audit key can: "delete" removes line N and every
# checkpoint after it; "forge" writes N sign lines of IN's shape from scratch
# (seq 1, prev zeros, time now) and no checkpoint.
rechain()
{
	"$HK_PYTHON" - "$@" <<'PY'
import hashlib, re, sys, time
mode, src, out = sys.argv[1], sys.argv[2], sys.argv[3]
n = int(sys.argv[4])
lines = open(src).read().splitlines()
if mode == "delete":
    kept = lines[: n - 1]
    kept += [l for l in lines[n:] if '"op":"checkpoint"' not in l]
    lines = kept
else:
    sign = next(l for l in lines if '"op":"sign"' in l)
    ms = int(time.time() * 1000)
    ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000))
    ts += ".%03dZ" % (ms % 1000)
    sign = re.sub(r'"time":"[^"]*"', '"time":"%s"' % ts, sign)
    sign = re.sub(r'"prev":"[0-9a-f]{64}"', '"prev":"%s"' % ("0" * 64), sign)
    lines = [sign] * n
    lines[0] = re.sub(r'^\{"seq":\d+,', '{"seq":1,', lines[0])
first = int(re.match(r'^\{"seq":(\d+),', lines[0]).group(1))
for i in range(1, len(lines)):
    prev = hashlib.sha256(lines[i - 1].encode()).hexdigest()
    l = re.sub(r'^\{"seq":\d+,', '{"seq":%d,' % (first + i), lines[i])
    lines[i] = re.sub(r'"prev":"[0-9a-f]{64}"\}$', '"prev":"%s"}' % prev, l)
open(out, "w").write("\n".join(lines) + "\n")
PY
}

# cp_lines FILE: the numbers of FILE's checkpoint lines, one a line.
cp_lines()
{
	grep -n '"op":"checkpoint"' "$1" | cut -d: -f1
}

note "---- a real log: 9 signs, a checkpoint every 4 lines, a clean stop"
expect_exit 0 hk create ak
expect_exit 0 hk pubkey hsmkey-audit --out "$PEM"
for i in $(seq 1 9); do
	hk sign ak --in "$MSG" >/dev/null 2>&1 || fail "sign $i"
done
hk_stop
cp "$LOG" "$T/a.log"
n=$(wc -l <"$T/a.log")
check "the service wrote checkpoints every 4 lines ($(cp_lines "$T/a.log" |
    tr '\n' ' '))" test "$(cp_lines "$T/a.log" | wc -l)" -ge 4
expect_exit 0 verify "$T/a.log"
check "it is intact with every checkpoint verified" \
    grep -q -E '^intact: .*, ([0-9]+) checkpoints, \1 signatures verified' \
    "$T/out"
expect_bad "covers [0-9]+ lines from .*, more than --checkpoint-every 2" \
    "a.log:[0-9]+" "$T/a.log" --checkpoint-every 2

note "---- an event deleted, later checkpoints dropped, chain recomputed"
# the first event after the second checkpoint
del=$(($(cp_lines "$T/a.log" | sed -n 2p) + 1))
rechain delete "$T/a.log" "$T/del.log" "$del"
expect_exit 0 env -u HSMKEY_CREDENTIALS "$HSMKEY" audit verify "$T/del.log"
check "... the chain alone holds (so only checkpoints can tell)" \
    grep -q '^intact: ' "$T/out"
expect_bad "unsigned tail .* covers [0-9]+ lines from .*del.log:$del, more than --checkpoint-every 4" \
    "del.log:$(wc -l <"$T/del.log")" "$T/del.log"

note "---- a log forged from scratch, with no checkpoint"
rechain forge "$T/a.log" "$T/forged.log" 3
expect_exit 0 env -u HSMKEY_CREDENTIALS "$HSMKEY" audit verify \
    "$T/forged.log"
check "... the chain alone holds" grep -q '^intact: 3 lines' "$T/out"
expect_bad "no checkpoint signature verified" "forged.log" "$T/forged.log"
expect_bad "no checkpoint signature verified" "forged.log" \
    "$T/forged.log" --allow-unsigned-tail

note "---- a rotated file that does not end with a checkpoint"
cut=$(cp_lines "$T/a.log" | sed -n 2p)
head -n "$((cut + 1))" "$T/a.log" >"$T/r1.log"
tail -n "+$((cut + 2))" "$T/a.log" >"$T/r2.log"
expect_bad "a rotated file .* must end with the checkpoint" \
    "r1.log:$((cut + 1))" "$T/r1.log" "$T/r2.log"
head -n "$cut" "$T/a.log" >"$T/s1.log"
tail -n "+$((cut + 1))" "$T/a.log" >"$T/s2.log"
expect_exit 0 verify "$T/s1.log" "$T/s2.log"
check "split at a checkpoint: intact" grep -q '^intact: .* 2 files' "$T/out"

note "---- an unsigned tail within the bounds and over them"
# from here on the lines of this run only: a continuation of a.log
hk_start || exit 1
expect_exit 0 hk sign ak --in "$MSG"
expect_exit 0 hk sign ak --in "$MSG"
tail -n "+$((n + 1))" "$LOG" >"$T/tail.log"
tl=$(wc -l <"$T/tail.log")
check "the copy ends in an unsigned tail" \
    sh -c "tail -n 1 '$T/tail.log' | grep -q '\"op\":\"sign\"'"
expect_exit 0 verify "$T/tail.log"
check "... within the bounds: intact, with a warning" \
    grep -q 'within the checkpoint bounds' "$T/err"
expect_exit 0 "$HSMKEY" --json audit verify --pubkey "$PEM" "$T/tail.log"
check "--json counts the unsigned tail" grep -q '"unsigned_tail":2' "$T/out"
expect_bad "unsigned tail .* more than --checkpoint-every 1 \\(--allow-unsigned-tail" \
    "tail.log:$tl" "$T/tail.log" --checkpoint-every 1
expect_exit 0 verify "$T/tail.log" --checkpoint-every 1 --allow-unsigned-tail
check "... accepted with --allow-unsigned-tail, which the warning names" \
    grep -q 'no signature covers them yet (--allow-unsigned-tail)' "$T/err"
# past checkpoint_interval 1s + 2 s of the writer's slack
sleep 4
expect_bad "unsigned tail .* unsigned for [4-9]\\.[0-9]+ s, more than --checkpoint-interval 1s \\+ 2 s" \
    "tail.log:$tl" "$T/tail.log" --checkpoint-interval 1s
expect_exit 0 verify "$T/tail.log" --checkpoint-interval 1s \
    --allow-unsigned-tail

note "---- a gap too long in time between two checkpoints"
expect_exit 0 hk sign ak --in "$MSG"
hk_stop
tail -n "+$((n + 1))" "$LOG" >"$T/b.log"
expect_exit 0 verify "$T/b.log"
expect_bad "this checkpoint leaves .*b.log:[0-9]+ unsigned for [4-9]\\.[0-9]+ s, more than --checkpoint-interval 1s" \
    "b.log:$(wc -l <"$T/b.log")" "$T/b.log" --checkpoint-interval 1s

note "---- usage"
for bad in "--checkpoint-every 0" "--checkpoint-every x" \
    "--checkpoint-interval 0" "--checkpoint-interval 36526d"; do
	# shellcheck disable=SC2086
	expect_exit 2 "$HSMKEY" audit verify "$T/a.log" $bad
	expect_one_line_error
done

hk_finish
