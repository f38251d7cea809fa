#!/usr/bin/env bash
#
# tests/bench/prepare.sh: builds the many-versions fixture of hsmkey-bench
# once (scripts/bench --prepare): a SoftHSM token holding KEYS keys of
# VERSIONS ecdsa-p256 versions each (2,500 x 4 = 10,000 by default), made by
# hsmkey-fixture with the service's own keyring code, plus an admin client
# (hsmkeyd --bootstrap-admin).  The result, in $OUT (build-bench/fixture-10k,
# never committed):
#   tokens/         the SoftHSM token directory
#   softhsm2.conf   pointing at tokens/ (run.sh rewrites it for its copy)
#   pin             the user PIN (0600; a throwaway token)
#   admin.cred      credentials of client "admin" (0600)
#   fixture.txt     what is in it, and how long it took to make
#
# Why shards: SoftHSM's file store re-reads its token directory (a stat of
# every object and lock file) after each change, so one object operation
# costs time linear in the objects already there and filling one token is
# quadratic: ~0.1 s per version on an empty token, several tenths of a
# second at 20,000 objects.  So the versions are made in SHARD_KEYS-key
# shards, each in a copy of one freshly initialised token (same token key,
# same PIN, so every shard's objects are readable by the others), JOBS
# shards at a time, and the shards' object files are then merged into one
# token directory.  SoftHSM finds a token's objects by listing its
# directory (<uuid>.object + <uuid>.lock per object), so the merged token
# is the token one long run would have made.  The merged token is then
# loaded the way hsmkeyd loads it (hsmkey-fixture again: token_list +
# keyring_load), which must find every key complete.
#
# Resumable: the work dir $OUT.work keeps finished shards (and the fixture
# program resumes a shard it was stopped in); run again to go on.
# Environment: HSMKEYD, HSMKEY_FIXTURE (binaries), SOFTHSM_MODULE,
# HK_FIXTURE_DIR (default build-bench/fixture-10k), HK_FIXTURE_KEYS (2500),
# HK_FIXTURE_VERSIONS (4), HK_FIXTURE_SHARD_KEYS (125), HK_FIXTURE_JOBS
# (number of cores).

set -uo pipefail

: "${HSMKEYD:?HSMKEYD must name the hsmkeyd binary}"
: "${HSMKEY_FIXTURE:?HSMKEY_FIXTURE must name the hsmkey-fixture binary}"
SOFTHSM_MODULE=${SOFTHSM_MODULE:-/usr/lib/softhsm/libsofthsm2.so}
OUT=${HK_FIXTURE_DIR:-build-bench/fixture-10k}
KEYS=${HK_FIXTURE_KEYS:-2500}
VERSIONS=${HK_FIXTURE_VERSIONS:-4}
SHARD_KEYS=${HK_FIXTURE_SHARD_KEYS:-125}
JOBS=${HK_FIXTURE_JOBS:-$(nproc 2>/dev/null || echo 2)}
W=$OUT.work

if [ -f "$OUT/fixture.txt" ]; then
	echo "prepare: $OUT exists:"
	cat "$OUT/fixture.txt"
	echo "prepare: remove $OUT to build it again"
	exit 0
fi

PIDS=()
cleanup()
{
	local rc=$? p
	trap - EXIT
	for p in "${PIDS[@]}"; do
		kill -TERM "$p" 2>/dev/null
	done
	for p in "${PIDS[@]}"; do
		wait "$p" 2>/dev/null
	done
	[ -n "${BT:-}" ] && rm -rf "$BT"
	if [ "$rc" -ne 0 ]; then
		echo "prepare: stopped (exit $rc); run it again to resume" \
		    "from $W" >&2
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# shellcheck source=tests/softhsm.sh
. "$(dirname "$0")/../softhsm.sh"

T0=$(date +%s)
mkdir -p "$W" || exit 1
W=$(cd "$W" && pwd)

# 1. one initialised token, the model of every shard
if [ ! -f "$W/base/done" ]; then
	rm -rf "$W/base"
	mkdir -p "$W/base" || exit 1
	(hk_token_init "$W/base" "$W/pin") || exit 1
	touch "$W/base/done"
fi

# 2. the shards, JOBS at a time
NSHARDS=$(((KEYS + SHARD_KEYS - 1) / SHARD_KEYS))
run_shard()	# index
{
	local s=$1 d=$W/shard-$1 first n rc
	first=$((s * SHARD_KEYS))
	n=$((KEYS - first < SHARD_KEYS ? KEYS - first : SHARD_KEYS))
	if [ ! -d "$d/tokens" ]; then
		rm -rf "$d.tmp"
		mkdir -p "$d.tmp" && cp -a "$W/base/tokens" "$d.tmp/tokens" &&
		    mv "$d.tmp" "$d" || return 1
	fi
	hk_softhsm_conf "$d"
	SOFTHSM2_CONF=$d/softhsm2.conf "$HSMKEY_FIXTURE" \
	    --module "$SOFTHSM_MODULE" --token "pkcs11:token=hsmkey" \
	    --pin-file "$W/pin" --first "$first" --keys "$n" \
	    --versions "$VERSIONS" --report 100 >>"$d/fixture.log" 2>&1 &
	FIX_PID=$!
}

echo "prepare: $KEYS keys x $VERSIONS versions in $NSHARDS shards of" \
    "$SHARD_KEYS keys, $JOBS at a time (logs: $W/shard-*/fixture.log)"
declare -A SHARD_OF=()
s=0
done_n=0
while :; do
	while [ "${#PIDS[@]}" -lt "$JOBS" ] && [ "$s" -lt "$NSHARDS" ]; do
		if [ -f "$W/shard-$s/done" ]; then
			done_n=$((done_n + 1))
			s=$((s + 1))
			continue
		fi
		run_shard "$s" || exit 1
		PIDS+=("$FIX_PID")
		SHARD_OF[$FIX_PID]=$s
		s=$((s + 1))
	done
	[ "${#PIDS[@]}" -eq 0 ] && break
	wait -n -p FINISHED "${PIDS[@]}"
	rc=$?
	sh=${SHARD_OF[$FINISHED]}
	NEW=()
	for p in "${PIDS[@]}"; do
		[ "$p" != "$FINISHED" ] && NEW+=("$p")
	done
	PIDS=("${NEW[@]+"${NEW[@]}"}")
	if [ "$rc" -ne 0 ]; then
		tail -n 5 "$W/shard-$sh/fixture.log" >&2
		echo "prepare: shard $sh failed (exit $rc)" >&2
		exit 1
	fi
	touch "$W/shard-$sh/done"
	done_n=$((done_n + 1))
	echo "prepare: shard $sh done ($done_n/$NSHARDS, $(($(date +%s) - T0)) s):" \
	    "$(grep 'made .* keys' "$W/shard-$sh/fixture.log" | tail -n 1)"
done

# 3. merge the shards' objects into one token directory
echo "prepare: merging $NSHARDS shards"
rm -rf "$W/merged"
mkdir -p "$W/merged" && cp -a "$W/base/tokens" "$W/merged/tokens" || exit 1
TOKDIR=$(ls -d "$W/merged/tokens"/*/ | head -n 1)
for ((s = 0; s < NSHARDS; s++)); do
	src=$(ls -d "$W/shard-$s/tokens"/*/ | head -n 1)
	# every object but the token's own (token.object, token.lock,
	# generation), which are the base's
	find "$src" -maxdepth 1 -type f \( -name '*.object' -o -name '*.lock' \) \
	    ! -name 'token.*' -print0 |
	    xargs -0 -r cp -a -t "$TOKDIR" || exit 1
done
hk_softhsm_conf "$W/merged"
cp -a "$W/pin" "$W/merged/pin"

# 4. load it as hsmkeyd does: every key must be there, complete
echo "prepare: checking the merged token (token_list + keyring_load)"
if ! SOFTHSM2_CONF=$W/merged/softhsm2.conf "$HSMKEY_FIXTURE" \
    --module "$SOFTHSM_MODULE" --token "pkcs11:token=hsmkey" \
    --pin-file "$W/merged/pin" --first 0 --keys "$KEYS" \
    --versions "$VERSIONS" >"$W/check.log" 2>&1 ||
    ! grep -q "^fixture: keys .*: $KEYS complete (skipped), 0 finished, 0 to make" \
    "$W/check.log"; then
	cat "$W/check.log" >&2
	echo "prepare: the merged token is not complete" >&2
	exit 1
fi
cat "$W/check.log"

# 5. an admin client for the bench, and the audit key
BT=$(mktemp -d "${TMPDIR:-/tmp}/hsmkey-prepare.XXXXXX") || exit 1
cat >"$BT/hsmkeyd.conf" <<EOC
; written by tests/bench/prepare.sh
[service]
listen = ipc://$BT/hsmkey.sock
log = stderr
log_level = info

[pkcs11]
module = $SOFTHSM_MODULE
token = pkcs11:token=hsmkey
pin_file = $W/merged/pin

; as in run.sh's config, so that the audit key (hsmkey-audit) is made
; here and not by the bench's hsmkeyd at its timed start
[audit]
path = $BT/audit.log
EOC
if ! SOFTHSM2_CONF=$W/merged/softhsm2.conf "$HSMKEYD" \
    --config "$BT/hsmkeyd.conf" --bootstrap-admin admin \
    --credentials-out "$W/merged/admin.cred" >"$BT/bootstrap.log" 2>&1 \
    </dev/null; then
	cat "$BT/bootstrap.log" >&2
	echo "prepare: hsmkeyd --bootstrap-admin failed" >&2
	exit 1
fi
rm -rf "$BT"
BT=

NOBJ=$(find "$W/merged/tokens" -name '*.object' ! -name 'token.object' | wc -l)
{
	echo "keys: $KEYS (many-00000..many-$(printf %05d $((KEYS - 1))))," \
	    "$VERSIONS ecdsa-p256 versions each: $((KEYS * VERSIONS)) versions"
	echo "token objects: $NOBJ ($(du -sh "$W/merged/tokens" | cut -f1))"
	echo "made by hsmkey-fixture (keyring_create + keyring_rotate) in" \
	    "$NSHARDS shards of $SHARD_KEYS keys, $JOBS at a time"
	echo "prepare took $(($(date +%s) - T0)) s this run" \
	    "(resumed runs: see $OUT/shards.log)"
	echo "built $(date -u +%Y-%m-%dT%H:%M:%SZ)"
} >"$W/merged/fixture.txt"
cat "$W"/shard-*/fixture.log >"$W/merged/shards.log" 2>/dev/null
rm -rf "$OUT"
mv "$W/merged" "$OUT" || exit 1
hk_softhsm_conf "$OUT"
rm -rf "$W"
echo "prepare: $OUT ready:"
cat "$OUT/fixture.txt"
