#!/usr/bin/env bash
#
# test_kill_loop.sh: kill -9 in a loop (issue 11).  The shipped hsmkeyd
# (through tests/faultp11, destroy_delay 0: a destroy deletes at once) is
# killed again and again while it works, each iteration one kind of work:
#   create   two keys are created
#   rotate   key sk is rotated four times (--expect: compare-and-set)
#   retire   twice: an old version of rk is disabled and destroyed, rk
#            rotated
#   clients  a client is added, gets a second secret, its first revoked
#   sign     six more signers
# and under it all, two signers (tests/audit_bench, one libhsmkey handle
# each) sign digests with sk (rk in retire) and keep every signature they
# RECEIVE.  The kill comes at a random moment: after a random sleep, or
# from the module, `kill FUNC after N` with a function of that kind's
# writes (or C_Sign) and a random N; a rule that never fires is followed by
# a kill -9 after 2 s.  After each restart:
#   - the token holds exactly what the service lists (lib.sh
#     token_consistent): every hsmkey:NAME:vN key object belongs to a
#     listed version, no orphan object, no half-made version, one record
#     per key and client, one object per live secret.  One exception,
#     noted and counted: SoftHSM rewrites an object file in place
#     (ftruncate, then write), so a kill inside the C_SetAttributeValue
#     that clears CKA_SIGN on a version that stops signing can lose that
#     retired version's private key object (its public key is in the
#     record: it still verifies); a version that may sign never loses it.
#     Likewise SoftHSM makes a new object's file before it writes the
#     object's attributes, so a kill in between leaves an object with none
#     (no label, no id: nothing can name it); one such object more is
#     taken after an iteration whose work makes objects, and counted;
#   - every change the CLI saw acknowledged (exit 0) is there: the key,
#     the version, the disabled or destroyed state, a client's new
#     credentials authenticate, a revoked secret is refused;
#   - every key signs, as its primary; for the keys of this iteration the
#     service and openssl (from the exported PEM) verify the signature, and
#     a version's exported public key never changes;
#   - every signature the signers received names a version the key still
#     has; a sample (the last of four signers, the first of each version,
#     one at random) verifies with openssl from that version's PEM and,
#     while the version verifies, with the service;
#   - `hsmkey audit verify` passes over the audit log.
# At the end every received signature has its audit line and every key
# signs and verifies with openssl.  The loop runs up to HK_KILL_ITERATIONS
# (60) iterations within HK_KILL_BUDGET (110 s; 200 s under ASan) seconds
# and fails with fewer than 50; HK_KILL_SEED repeats a run (the rules and
# sleeps drawn; timing still varies).

. "$(dirname "$0")/lib.sh"

: "${AUDIT_BENCH:?AUDIT_BENCH must name the audit_bench binary}"
: "${KILL_PROBE:?KILL_PROBE must name the kill_probe binary}"

KL_MIN=50
KL_MAX=${HK_KILL_ITERATIONS:-60}
KL_BUDGET=${HK_KILL_BUDGET:-110}
# under ASan every process starts slower (scripts/test's build-asan)
if hk_asan_build; then
	KL_BUDGET=${HK_KILL_BUDGET:-200}
fi
KL_SEED=${HK_KILL_SEED:-$$}
RANDOM=$KL_SEED
KINDS=(create rotate retire clients sign)
# FUNC:MAX per kind: the rule is `kill FUNC after N`, N in 0..MAX
declare -A KL_RULES=(
	[create]='C_CreateObject:3 C_GenerateKeyPair:1 C_DestroyObject:3 C_CopyObject:1'
	[rotate]='C_CreateObject:7 C_GenerateKeyPair:3 C_DestroyObject:15 C_SetAttributeValue:3'
	[retire]='C_CreateObject:7 C_DestroyObject:13 C_SetAttributeValue:1'
	[clients]='C_GenerateRandom:1 C_CreateObject:4 C_DestroyObject:2'
	[sign]='C_Sign:300'
)

hk_faultp11
hk_setup
printf '\n[keys]\ndestroy_delay = 0\n' >>"$T/hsmkeyd.conf"
MSG=$T/msg
printf 'kill me\n' >"$MSG"
mkdir "$T/pem" "$T/cred" "$T/recv"
fault_rules '# no rules'
note "seed $KL_SEED (HK_KILL_SEED repeats this run)"

# ------------------------------------------------------------ the work

# kl_op ACK ARGS...: hsmkey ARGS as admin; on exit 0 ACK is appended to
# $T/acks.  $T/tried lists what was started, $T/inflight what runs; a
# failure (the service answered with an error while it was up) goes to
# $T/opfail and ends the work.
kl_op()
{
	local ack=$1 rc
	shift
	printf '%s\n' "$ack" >>"$T/tried"
	printf '%s\n' "$ack" >"$T/inflight"
	hk --timeout 20 "$@" >"$T/op.out" 2>"$T/op.err"
	rc=$?
	if [ "$rc" -eq 0 ]; then
		printf '%s\n' "$ack" >>"$T/acks"
		return 0
	fi
	printf 'exit %s: hsmkey %s: %s\n' "$rc" "$*" \
	    "$(tr '\n' ' ' <"$T/op.err")" >"$T/opfail"
	return 1
}

# kl_idle [WHAT]: the work is done; only the signers go on.
kl_idle()
{
	printf '%s\n' "${1:-idle}" >"$T/inflight"
	sleep 30
}

kl_ops_create()
{
	local n
	for n in a b; do
		kl_op "create c$ITER$n" create "c$ITER$n" || return
	done
	kl_idle
}

kl_ops_rotate()
{
	local v=${NEWEST[sk]} i
	for i in 1 2 3 4; do
		kl_op "rotate sk $((v + 1))" rotate sk --expect "$v" || return
		v=$((v + 1))
	done
	kl_idle
}

# twice: the oldest live version of rk is disabled and destroyed, then rk
# rotates (when only the primary is left, it rotates first); only versions
# older than this iteration are destroyed (kl_pems exported them)
kl_ops_retire()
{
	local v=$RK_OLD n=${NEWEST[rk]} n0=${NEWEST[rk]} i
	local st=${STATE[rk:$RK_OLD]}
	for i in 1 2; do
		[ "$v" -le "$n0" ] || break
		if [ "$v" -ge "$n" ]; then
			kl_op "rotate rk $((n + 1))" rotate rk --expect "$n" ||
			    return
			n=$((n + 1))
		fi
		if [ "$st" != disabled ]; then
			kl_op "disable rk $v" disable rk --version "$v" ||
			    return
		fi
		kl_op "destroy rk $v" destroy rk --version "$v" &&
		    kl_op "rotate rk $((n + 1))" rotate rk --expect "$n" ||
		    return
		v=$((v + 1))
		n=$((n + 1))
		KL_SIGNED=$((KL_SIGNED + 1))
		st=verify-only
	done
	kl_idle
}

kl_ops_clients()
{
	local id=k$ITER
	kl_op "cadd $id" client add "$id" --grant 'sign:sk' \
	    --out "$T/cred/$id.1" &&
	    kl_op "crot $id" client rotate "$id" --out "$T/cred/$id.2" &&
	    kl_op "crev $id" client revoke "$id" --secret 1 && kl_idle
}

kl_ops_sign()
{
	kl_idle sign
}

# kl_rule KIND: a random `kill FUNC after N` for KIND.
kl_rule()
{
	local -a r
	local pick
	read -r -a r <<<"${KL_RULES[$1]}"
	pick=${r[RANDOM % ${#r[@]}]}
	printf 'kill %s after %d\n' "${pick%%:*}" \
	    $((RANDOM % (${pick##*:} + 1)))
}

# ------------------------------------------------------------ the checks

# Reads $T/keys.json into PRIMARY[name], NEWEST[name], STATE[name:N], and
# RK_OLD (the oldest version of rk not destroyed).
KL_PY_STATE='
import json, sys
for k in json.load(open(sys.argv[1]))["keys"]:
    vs = k["versions"]
    print("K", k["name"], k["primary"], len(vs))
    for v in vs:
        print("V", k["name"], v["version"], v["state"])
'
kl_state()
{
	local tag a b c
	PRIMARY=()
	NEWEST=()
	STATE=()
	while read -r tag a b c; do
		if [ "$tag" = K ]; then
			PRIMARY[$a]=$b
			NEWEST[$a]=$c
		else
			STATE[$a:$b]=$c
		fi
	done < <("$HK_PYTHON" -c "$KL_PY_STATE" "$T/keys.json")
	RK_OLD=1
	while [ "${STATE[rk:$RK_OLD]:-}" = destroyed ]; do
		RK_OLD=$((RK_OLD + 1))
	done
}
declare -A PRIMARY=() NEWEST=() STATE=()

# kl_pems: exports the public key of every version not destroyed that has
# none in $T/pem yet; with KEY..., re-exports their primaries: the same.
kl_pems()
{
	local kv k v
	for kv in "${!STATE[@]}"; do
		k=${kv%%:*}
		v=${kv##*:}
		[ "${STATE[$kv]}" != destroyed ] || continue
		[ ! -e "$T/pem/$k.v$v.pem" ] || continue
		expect_exit 0 hk pubkey "$k" --version "$v" \
		    --out "$T/pem/$k.v$v.pem"
	done
	for k in "$@"; do
		v=${PRIMARY[$k]}
		hk pubkey "$k" --version "$v" --out "$T/pem.now" 2>/dev/null
		check "$k v$v: the same public key as when first exported" \
		    cmp -s "$T/pem/$k.v$v.pem" "$T/pem.now"
	done
}

# kl_acks: every acknowledged change of this iteration is in place.
kl_acks()
{
	local op a b st
	while read -r op a b; do
		case $op in
		create)
			check "acked create $a: the key is there" \
			    test -n "${PRIMARY[$a]:-}" ;;
		rotate)
			st=${STATE[$a:$b]:-none}
			check "acked rotate $a v$b: v$b is there ($st)" \
			    grep -qxE 'active|verify-only|disabled|destroyed' \
			    <<<"$st" ;;
		disable)
			st=${STATE[$a:$b]:-none}
			check "acked disable $a v$b: $st" \
			    grep -qxE 'disabled|destroyed' <<<"$st" ;;
		destroy)
			check "acked destroy $a v$b: ${STATE[$a:$b]:-none}" \
			    test "${STATE[$a:$b]:-}" = destroyed ;;
		cadd)
			# its first secret: refused once a revoke was tried
			if grep -qx "crev $a" "$T/tried"; then
				continue
			fi
			expect_exit 0 "$HSMKEY" --credentials "$T/cred/$a.1" \
			    sign sk --in "$MSG" ;;
		crot)
			expect_exit 0 "$HSMKEY" --credentials "$T/cred/$a.2" \
			    sign sk --in "$MSG" ;;
		crev)
			expect_exit 3 "$HSMKEY" --credentials "$T/cred/$a.1" \
			    sign sk --in "$MSG" ;;
		esac
	done <"$T/acks"
}

# kl_keys_sign KEY...: every key signs as its primary and the service
# verifies it (tests/kill_probe: one process); the signatures of KEY...
# (this iteration's) also verify with openssl.
kl_keys_sign()
{
	local k sig mine=" $* " keys=() n=0
	for k in "${!PRIMARY[@]}"; do
		hk_service_key "$k" || keys+=("$k")
	done
	while read -r k sig; do
		if [ "$(sig_version "$sig")" != "${PRIMARY[$k]:-}" ]; then
			fail "$k does not sign as v${PRIMARY[$k]:-?}: $sig"
			continue
		fi
		n=$((n + 1))
		KL_SIGNED=$((KL_SIGNED + 1))
		[ "${mine#* "$k" }" != "$mine" ] || continue
		check "openssl verifies $k v${PRIMARY[$k]}'s signature" \
		    openssl_verify_sig "$T/pem/$k.v${PRIMARY[$k]}.pem" "$sig" \
		    "$MSG"
	done < <("$KILL_PROBE" "$T/admin.cred" sign "$MSG" "${keys[@]}")
	check "all ${#keys[@]} keys sign as their primary, and verify ($n)" \
	    test "$n" -eq "${#keys[@]}"
}

# Of the signatures in DIR/received.*, by KEY whose versions VERSIONS
# (comma-separated) exist: prints "BAD line" for a line not of the form
# "hsmkey:vN:... HEX" or naming a version KEY does not have, "N count", and
# the sample ("S sig hex"): the last of each of four files (the signers'
# last before the kill), the first of each version, one at random (SEED).
KL_PY_SAMPLE='
import os, random, re, sys
d, versions, seed = sys.argv[1], set(sys.argv[2].split(",")), sys.argv[3]
random.seed(seed)
form = re.compile(r"^hsmkey:v([0-9]+):[A-Za-z0-9+/=]+ [0-9a-f]{64}$")
lines, pick, first = [], [], {}
for f in sorted(os.listdir(d)):
    if not f.startswith("received."):
        continue
    mine = []
    for l in open(os.path.join(d, f)):
        l = l.strip()
        m = form.match(l)
        if not m or m.group(1) not in versions:
            print("BAD", l)
            continue
        mine.append(l)
        first.setdefault(m.group(1), l)
    lines += mine
    if f < "received.4":
        pick += mine[-1:]
pick += list(first.values()) + random.sample(lines, min(1, len(lines)))
print("N", len(lines))
for l in sorted(set(pick)):
    print("S", l)
'

# kl_received DIR KEY: the signers' signatures (KL_PY_SAMPLE's checks,
# then the sample through openssl, and through the service while its
# version verifies).
kl_received()
{
	local dir=$1 key=$2 tag sig hex v vs="" kv n=0 st n_s
	for kv in "${!STATE[@]}"; do
		[ "${kv%%:*}" = "$key" ] && vs=$vs${vs:+,}${kv##*:}
	done
	: >"$T/sample"
	while read -r tag sig hex; do
		case $tag in
		BAD)
			fail "received a signature of no version $key has:" \
			    "$sig $hex" ;;
		N)
			n=$sig
			KL_RECEIVED=$((KL_RECEIVED + sig)) ;;
		S)
			v=$(sig_version "$sig")
			KL_SAMPLED=$((KL_SAMPLED + 1))
			check "$key v$v (it signed): its public key exported" \
			    test -s "$T/pem/$key.v$v.pem" || continue
			check "openssl verifies a received $key v$v signature" \
			    openssl_verify_sig "$T/pem/$key.v$v.pem" "$sig" \
			    --digest "$hex"
			st=${STATE[$key:$v]}
			if [ "$st" = active ] || [ "$st" = verify-only ]; then
				printf '%s %s\n' "$sig" "$hex" >>"$T/sample"
			fi ;;
		esac
	done < <("$HK_PYTHON" -c "$KL_PY_SAMPLE" "$dir" "$vs" "$RANDOM")
	"$KILL_PROBE" "$T/admin.cred" verify "$key" <"$T/sample" \
	    >"$T/sample.out"
	n_s=$(wc -l <"$T/sample")
	check "the service verifies the $n_s sampled whose version verifies" \
	    test "$(grep -c '^valid ' "$T/sample.out")" -eq "$n_s"
	note "iteration $ITER: the signers received $n signatures"
}

# kl_check KEY: after a restart (KEY: the signers' key).
kl_check()
{
	local key=$1 k v torn
	if [ -s "$T/opfail" ]; then
		fail "iteration $ITER: a change failed while the service was" \
		    "up: $(cat "$T/opfail")"
	fi
	# SoftHSM makes a new object's file before it writes the object's
	# attributes: a kill between the two leaves an object with none
	# (pkcs11-tool's "<empty>"), which nothing can name.  One more such
	# object is taken after work that makes objects (not sign), once:
	# from then on it is counted, never a reason to take another.
	torn=$KL_TORN_NEW
	[ "$kind" != sign ] && torn=$((torn + 1))
	token_consistent "iteration $ITER" lost-ok "$torn"
	torn=$(($(grep -c -x '<empty>' "$T/labels.txt") -
	    $(grep -c -v '^<empty> ' "$T/lost.txt")))
	if [ "$torn" -gt "$KL_TORN_NEW" ]; then
		note "SoftHSM left $((torn - KL_TORN_NEW)) new object(s) with" \
		    "no attributes (iteration $ITER, $kind: killed while it" \
		    "created them)"
		KL_TORN_NEW=$torn
	fi
	while read -r k v; do
		if [ "$k" = "<empty>" ]; then
			[ -n "${KL_TORN:-}" ] && continue
			KL_TORN=$ITER
			note "SoftHSM left $v object(s) of a lost version with" \
			    "no attributes (iteration $ITER)"
			continue
		fi
		if [ -z "${KL_LOST[$k $v]:-}" ]; then
			KL_LOST[$k $v]=$ITER
			note "SoftHSM lost the key object of retired $k $v" \
			    "(iteration $ITER: killed inside the rewrite of" \
			    "its object file)"
		fi
	done <"$T/lost.txt"
	kl_state
	kl_pems sk rk
	kl_acks
	kl_keys_sign sk rk "c${ITER}a" "c${ITER}b"
	kl_received "$T/recv/$ITER" "$key"
	expect_exit 0 hk audit verify "$T/audit.log"
}

# ------------------------------------------------------------ the loop

# kl_iteration KIND MODE: work of KIND, killed by MODE (sleep or rule).
kl_iteration()
{
	local kind=$1 mode=$2 pid=$HK_PID key=sk threads=2 rule= ops bench
	local dir=$T/recv/$ITER i what
	mkdir "$dir"
	: >"$T/acks"
	: >"$T/tried"
	: >"$T/inflight"
	rm -f "$T/opfail" "$T/faultp11.log"
	[ "$kind" = retire ] && key=rk
	[ "$kind" = sign ] && threads=8
	"$AUDIT_BENCH" "$T/admin.cred" "$key" 120 "$threads" "$dir" \
	    >"$dir/bench.out" 2>"$dir/bench.err" &
	bench=$!
	HK_PIDS+=("$bench")
	if [ "$mode" = rule ]; then
		rule=$(kl_rule "$kind")
		fault_rules "$rule"
	fi
	# its own process group: the work and the hsmkey it runs die together
	set -m
	("kl_ops_$kind") &
	ops=$!
	set +m
	HK_PIDS+=("-$ops")
	# (stderr: bash's "Killed" notice of the daemon, to /dev/null)
	{
		if [ "$mode" = sleep ]; then
			sleep "0.$(printf '%03d' $((20 + RANDOM % 430)))"
			kill -KILL "$pid"
		else
			for ((i = 0; i < 20; i++)); do
				kill -0 "$pid" || break
				sleep 0.1
			done
			if kill -0 "$pid"; then
				mode=rule-missed
				kill -KILL "$pid"
			fi
		fi
		what=$(cat "$T/inflight")
		what=${what%% *}
		what=${what:-before the work}
		expect_killed "$pid" "iteration $ITER ($kind, $mode${rule:+: \
$rule}, during $what)" 10
	} 2>/dev/null
	kill -KILL -- "-$ops" "$bench" 2>/dev/null
	{ wait "$ops" "$bench"; } 2>/dev/null
	hk_forget_pid "-$ops"
	hk_forget_pid "$bench"
	KL_KIND[$kind]=$((${KL_KIND[$kind]:-0} + 1))
	KL_MODE[$mode]=$((${KL_MODE[$mode]:-0} + 1))
	KL_DURING[$what]=$((${KL_DURING[$what]:-0} + 1))
	fault_rules '# no rules'
	hk_start || return 1
	kl_check "$key"
}

declare -A KL_KIND=() KL_MODE=() KL_DURING=() KL_LOST=()
KL_RECEIVED=0
KL_TORN_NEW=0 # objects SoftHSM left with no attributes as it made them
KL_SAMPLED=0
KL_SIGNED=0

hk_start || exit 1
expect_exit 0 hk create sk
expect_exit 0 hk create rk
expect_exit 0 hk rotate rk --expect 1
token_consistent "before the loop"
kl_state
kl_pems

t0=${EPOCHREALTIME/./}
ITER=0
while [ "$ITER" -lt "$KL_MAX" ] &&
    [ $((${EPOCHREALTIME/./} - t0)) -lt $((KL_BUDGET * 1000000)) ]; do
	ITER=$((ITER + 1))
	kind=${KINDS[(ITER - 1) % ${#KINDS[@]}]}
	mode=sleep
	[ $((RANDOM % 2)) -eq 0 ] && mode=rule
	note "==== iteration $ITER: $kind, $mode"
	kl_iteration "$kind" "$mode" || break
done
secs=$(((${EPOCHREALTIME/./} - t0) / 1000000))

note "---- after the loop"
audit_receipts "$T/audit.log" "$T"/recv/*/received.*
for k in "${!PRIMARY[@]}"; do
	! hk_service_key "$k" || continue
	sign_works "$k" "${PRIMARY[$k]}" "$MSG" "$T/pem/$k.v${PRIMARY[$k]}.pem"
done
expect_exit 0 hk audit verify "$T/audit.log"
hk_stop

summary()
{
	local -n h=$1
	local k out=
	for k in "${!h[@]}"; do
		out="$out $k ${h[$k]},"
	done
	printf '%s' "${out%,}"
}
note "$ITER iterations in ${secs}s (seed $KL_SEED)"
note "per kind:$(summary KL_KIND)"
note "killed by:$(summary KL_MODE)"
note "killed during:$(summary KL_DURING)"
note "signatures received $KL_RECEIVED, checked with openssl and the" \
    "service $KL_SAMPLED; keys signed after restarts $KL_SIGNED times"
note "key objects of retired versions SoftHSM lost: ${#KL_LOST[@]}" \
    "${!KL_LOST[*]}"
check "at least $KL_MIN iterations ran ($ITER in ${secs}s)" \
    test "$ITER" -ge "$KL_MIN"

hk_finish
