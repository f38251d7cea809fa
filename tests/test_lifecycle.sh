#!/usr/bin/env bash
#
# test_lifecycle.sh: the life cycle of issue 13.  A scheduled destroy
# cancelled within the delay leaves the version disabled with the same
# public key and its objects in the token; one left to run out deletes them
# (pkcs11-tool) and cannot be cancelled; a destroy-scheduled version signs
# and verifies nothing; the primary cannot be destroyed.  rotate
# --emergency disables every older version at once (their signatures
# verify as invalid), asks on a terminal and refuses without one.  Past its
# expiry a key signs nothing.  A key with rotate_every of 3 s rotates on
# schedule under 4 signers with no failed request, its older versions go
# verify-only then disabled as the policy says, and every automatic move is
# an audit line that `hsmkey audit verify` accepts.

. "$(dirname "$0")/lib.sh"

: "${SIGNER_LOOP:?SIGNER_LOOP must name the signer_loop program}"

DELAY=3 # [keys] destroy_delay, s
hk_setup
printf '\n[keys]\ndestroy_delay = %ss\n' "$DELAY" >>"$T/hsmkeyd.conf"
hk_start || exit 1
LOG=$T/audit.log

MSG=$T/msg
printf 'life cycle\n' >"$MSG"

# describe_line NAME V: the versions table row of vV in `describe NAME`.
describe_line()
{
	hk describe "$1" | awk -v v="v$2" '$1 == v || $1 == v "*" { print }'
}

# wait_state NAME V STATE SECONDS: vV of NAME reaches STATE in time.
wait_state()
{
	local end=$((SECONDS + $4))
	while [ "$SECONDS" -le "$end" ]; do
		if key_versions "$1" | grep -qx "v$2 $3"; then
			return 0
		fi
		sleep 0.2
	done
	return 1
}

# audit_has OP KEY V: the log has the service's own line of OP for KEY vV.
audit_has()
{
	grep -q -F "\"client\":\"-\",\"secret\":0,\"op\":\"$1\",\"key\":\"$2\",\"version\":$3," "$LOG"
}

# key_usage LABEL: the Usage line of the private key LABEL (pkcs11-tool).
key_usage()
{
	token_objects | awk -v l="$1" '
	    /^Private Key Object/ { p = 1; next }
	    /^[^ ]/ { p = 0 }
	    p && $1 == "label:" { m = ($2 == l) }
	    p && m && $1 == "Usage:" { $1 = ""; sub(/^ /, ""); print; exit }'
}

# audit_retired V: sk vV's overlap-end and grace-end are audit lines.
audit_retired()
{
	audit_has overlap-end sk "$1" && audit_has grace-end sk "$1"
}

# tty_run ANSWER CMD...: runs CMD with a terminal as stdin, types ANSWER
# at its prompt; its exit status in HK_RC, what it wrote in $T/tty.out.
tty_run()
{
	local answer=$1
	shift
	"$HK_PYTHON" - "$answer" "$@" >"$T/tty.out" 2>&1 <<'EOF'
import os, pty, sys, time
answer = sys.argv[1]
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[2], sys.argv[2:])
out = b""
deadline = time.time() + 20
sent = False
while time.time() < deadline:
    try:
        chunk = os.read(fd, 4096)
    except OSError:
        break
    if not chunk:
        break
    out += chunk
    if not sent and b"to go on:" in out:
        os.write(fd, answer.encode() + b"\n")
        sent = True
sys.stdout.write(out.decode(errors="replace"))
_, st = os.waitpid(pid, 0)
sys.exit(os.WEXITSTATUS(st) if os.WIFEXITED(st) else 99)
EOF
	HK_RC=$?
}

# ---- destroy, cancel, destroyed --------------------------------------------
note "---- destroy --cancel, and a destroy left to run out"
expect_exit 0 hk create dk
expect_exit 0 hk sign dk --in "$MSG"
sig1=$HK_OUT
expect_exit 0 hk rotate dk
expect_exit 0 hk sign dk --in "$MSG"
sig2=$HK_OUT
expect_exit 0 hk rotate dk
expect_versions dk "primary 3" "v1 verify-only" "v2 verify-only" "v3 active"

# The primary: refused, with what to do.
expect_exit 5 hk destroy dk --version 3 && expect_one_line_error
check "destroying the primary says rotate first" \
    grep -q "is the primary: rotate first" "$T/err"

# Scheduled and cancelled at once: v1 is disabled, same key, same objects.
expect_exit 0 hk pubkey dk --version 1 --der --out "$T/v1.before.der"
expect_exit 0 hk destroy dk --version 1
expect_exit 0 hk destroy dk --version 1 --cancel
check "cancel says the version is disabled" grep -q "disabled" "$T/out"
expect_versions dk "primary 3" "v1 disabled" "v2 verify-only" "v3 active"
expect_exit 0 hk pubkey dk --version 1 --der --out "$T/v1.after.der"
check "v1 has the same public key after the cancel" \
    cmp -s "$T/v1.before.der" "$T/v1.after.der"
check "v1's private key is still in the token" \
    test "$(token_label_count hsmkey:dk:v1)" -eq 1
expect_exit 1 hk verify dk --sig "$sig1" --in "$MSG"
expect_exit 5 hk destroy dk --version 1 --cancel && expect_one_line_error
check "a second cancel: not destroy-scheduled" \
    grep -q "is disabled, not destroy-scheduled" "$T/err"
expect_exit 5 hk destroy dk --version 3 --cancel

# v2 scheduled and left: signs and verifies nothing, describe has the date.
expect_exit 0 hk verify dk --sig "$sig2" --in "$MSG"
expect_exit 0 hk destroy dk --version 2
check "destroy says when" grep -q "will be destroyed at 20" "$T/out"
check "describe shows v2's destroy date (UNTIL)" \
    grep -q -E 'destroy-scheduled .*20[0-9-]+T[0-9:]+Z *$' \
    <(describe_line dk 2)
expect_exit 1 hk verify dk --sig "$sig2" --in "$MSG"
expect_exit 5 hk sign dk --version 2 --in "$MSG"
check "v2's private key is in the token while scheduled" \
    test "$(token_label_count hsmkey:dk:v2)" -eq 1
check "v2 is destroyed within the delay and a tick" \
    wait_state dk 2 destroyed $((DELAY + 10))
check "v2's objects are gone from the token (pkcs11-tool)" \
    test "$(token_label_count hsmkey:dk:v2)" -eq 0
check "v1's and v3's objects are still there" \
    test "$(token_labels_with_prefix hsmkey:dk:v | sort | tr '\n' ' ')" = \
    "hsmkey:dk:v1 hsmkey:dk:v3 "
expect_exit 5 hk destroy dk --version 2 --cancel && expect_one_line_error
check "cancel after the delay: the objects are gone" \
    grep -q "is destroyed: its key objects are gone" "$T/err"
expect_exit 1 hk verify dk --sig "$sig2" --in "$MSG"
check "the tick's delay-end is an audit line" audit_has delay-end dk 2
check "the cancel's line says destroy-cancel" \
    grep -q '"op":"destroy-cancel","key":"dk","version":1,"items":0,"status":"OK"' "$LOG"

# ---- emergency rollover ----------------------------------------------------
note "---- rotate --emergency"
expect_exit 0 hk create ek
expect_exit 0 hk pubkey ek --version 1 --out "$T/ek1.pem"
expect_exit 0 hk sign ek --in "$MSG"
esig1=$HK_OUT
expect_exit 0 hk rotate ek
expect_exit 0 hk sign ek --in "$MSG"
esig2=$HK_OUT
expect_exit 0 hk rotate ek --stage
before=$(key_versions ek)
expect_exit 2 hk rotate ek --emergency --stage
expect_exit 2 hk rotate ek --emergency </dev/null && expect_one_line_error
check "no terminal: add --yes" \
    grep -q "rotate ek --emergency: not a terminal; add --yes to confirm" \
    "$T/err"
tty_run wrong "$HSMKEY" --credentials "$T/admin.cred" rotate ek --emergency
check "a wrong answer at the prompt refuses (exit 2)" test "$HK_RC" -eq 2
check "the prompt names the versions it disables" \
    grep -q "rotate ek --emergency disables versions 1, 2, 3 for signing and verifying. Type the key name to go on:" \
    "$T/tty.out"
check "refused emergencies change nothing" \
    test "$(key_versions ek)" = "$before"
tty_run ek "$HSMKEY" --credentials "$T/admin.cred" rotate ek --emergency
check "the key name at the prompt goes on (exit 0)" test "$HK_RC" -eq 0 ||
    sed -e 's/^/    tty: /' "$T/tty.out"
expect_versions ek "primary 4" "v1 disabled" "v2 disabled" "v3 disabled" \
    "v4 active"
expect_exit 1 hk verify ek --sig "$esig1" --in "$MSG"
expect_exit 1 hk verify ek --sig "$esig2" --in "$MSG"
check "CKA_SIGN is off on the disabled v1, v2, v3 and on on v4" \
    test "$(for v in 1 2 3 4; do key_usage "hsmkey:ek:v$v"; done |
	tr '\n' ' ')" = "none none none sign "
expect_exit 5 hk sign ek --version 2 --in "$MSG"
expect_exit 0 hk pubkey ek --out "$T/ek4.pem"
sign_works ek 4 "$MSG" "$T/ek4.pem"
esig4=$HK_OUT
check "the old signature still verifies offline: only the service says no" \
    openssl_verify_sig "$T/ek1.pem" "$esig1" "$MSG"

# A resent emergency with --expect of the old version: a lost CAS.
expect_exit 5 hk rotate ek --emergency --yes --expect 3
expect_versions ek "primary 4" "v1 disabled" "v2 disabled" "v3 disabled" \
    "v4 active"
expect_exit 0 hk rotate ek --emergency --yes --expect 4
expect_versions ek "primary 5" "v1 disabled" "v2 disabled" "v3 disabled" \
    "v4 disabled" "v5 active"
expect_exit 1 hk verify ek --sig "$esig4" --in "$MSG"
expect_exit 0 hk pubkey ek --out "$T/ek5.pem"
sign_works ek 5 "$MSG" "$T/ek5.pem"
check "the emergencies' lines say rotate-emergency" \
    test "$(grep -c '"op":"rotate-emergency","key":"ek"' "$LOG")" -eq 3
# (the lost CAS is the third: FAILED_PRECONDITION)

# Past its expiry a key signs nothing.
expect_exit 0 hk create xk
expect_exit 0 hk sign xk --in "$MSG"
expect_exit 0 hk policy xk --expires 2001-01-01
expect_exit 5 hk sign xk --in "$MSG"

# ---- the scheduled life cycle under signers ---------------------------------
note "---- rotate_every 3s under 4 signers"
expect_exit 0 hk create sk
expect_exit 0 hk policy sk --rotate-every 3s --sign-overlap 1s \
    --verify-grace 2s
check "describe shows the next rotation" \
    grep -q -E "^next rotation: 20[0-9-]+T[0-9:]+Z" <(hk describe sk)
check "--json describe has next_rotation" \
    grep -q '"next_rotation":"20' <(hk --json describe sk)
expect_exit 0 hk client add signer --grant 'sign:sk' --out "$T/signer.cred"
"$SIGNER_LOOP" "$T/signer.cred" sk 4 "$T/loop.stop" 30 \
    >"$T/loop.out" 2>"$T/loop.err" &
loop_pid=$!
HK_PIDS+=("$loop_pid")
sleep 12
touch "$T/loop.stop"
wait "$loop_pid"
loop_rc=$?
check "4 signers ran ~12 s across the rotations with no failed request" \
    test "$loop_rc" -eq 0 || sed -e 's/^/    loop: /' "$T/loop.err" | head
note "signers: $(cat "$T/loop.out")"
expect_exit 0 hk policy sk --rotate-every 0
check "describe says next rotation: off" \
    grep -q "^next rotation: off" <(hk describe sk)
newest=$(key_versions sk | tail -n 1 | sed -e 's/^v\([0-9]*\) .*/\1/')
check "sk rotated at least 3 times in 12 s (newest v$newest)" \
    test "${newest:-0}" -ge 4
check "v$((newest - 1)) is disabled within overlap + grace + a tick" \
    wait_state sk $((newest - 1)) disabled 6
want=("primary $newest")
for ((v = 1; v < newest; v++)); do
	want+=("v$v disabled")
done
want+=("v$newest active")
expect_versions sk "${want[@]}"
for ((v = 2; v <= newest; v++)); do
	check "the automatic rotation to v$v is an audit line" \
	    audit_has rotate sk "$v"
done
for ((v = 1; v < newest; v++)); do
	check "v$v's overlap-end and grace-end are audit lines" \
	    audit_retired "$v"
done
# On schedule: activations 3 s apart (a tick is 1 s), each overlap ends 1 s
# after the next version came, each grace 2 s after its overlap ended.
check "rotations, overlap ends and grace ends are on schedule" \
    "$HK_PYTHON" - "$LOG" <<'EOF'
import datetime, json, sys
t = {}
for line in open(sys.argv[1]):
    e = json.loads(line)
    if e.get("client") == "-" and e.get("key") == "sk":
        ts = datetime.datetime.strptime(e["time"], "%Y-%m-%dT%H:%M:%S.%fZ")
        t[(e["op"], e["version"])] = ts.timestamp()
bad = []
n = max(v for (op, v) in t if op == "rotate")
for v in range(2, n + 1):
    if v > 2 and not 2.9 <= t[("rotate", v)] - t[("rotate", v - 1)] <= 5.0:
        bad.append("rotate v%d %.2f s after v%d" % (v, t[("rotate", v)] - t[("rotate", v - 1)], v - 1))
    o = t[("overlap-end", v - 1)] - t[("rotate", v)]
    g = t[("grace-end", v - 1)] - t[("overlap-end", v - 1)]
    if not 0.5 <= o <= 2.5 or not 1.5 <= g <= 3.5:
        bad.append("v%d: overlap %.2f s, grace %.2f s" % (v - 1, o, g))
if bad:
    sys.exit("; ".join(bad))
EOF

expect_exit 0 hk pubkey hsmkey-audit --out "$T/audit.pem"
hk_stop
expect_exit 0 "$HSMKEY" audit verify "$LOG" --pubkey "$T/audit.pem"
check "audit verify says intact" grep -q '^intact: ' "$T/out"
hk_finish
