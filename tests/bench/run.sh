#!/usr/bin/env bash
#
# tests/bench/run.sh [--smoke] [--json FILE] [--slow-hsm ROUNDS]: makes a throwaway SoftHSM
# token and hsmkeyd configuration in a temp dir, starts `p11-kit server` on
# that token (when p11-kit's client module is installed), and runs
# hsmkey-bench, which starts hsmkeyd itself (tests/bench/bench.c).
#
# Environment: HSMKEYD and HSMKEY_BENCH (paths of the binaries, set by
# scripts/bench or tests/bench/meson.build); SOFTHSM_MODULE,
# P11KIT_CLIENT_MODULE override the module paths; HK_KEEP=1 keeps the
# temp dir.  HK_FIXTURE_DIR: the many-versions token that scripts/bench
# --prepare built (build-bench/fixture-10k); when it is complete and this
# is not --smoke, it is copied (cp -a, so runs never change it) into the
# temp dir and the bench runs a second hsmkeyd on the copy.
# FAULTP11 (tests/faultp11/faultp11.so) enables the slow-HSM rows: two
# more hsmkeyd configs on that module (hsmkeyd-slow.conf with the default
# workers and max_parallel, hsmkeyd-nogate.conf with max_parallel = 0);
# --slow-hsm ROUNDS runs only those rows, ROUNDS times interleaved.
# HK_BENCH_AUDIT_SIGNS=no runs the service with [audit] signs = no (every
# sign otherwise waits for its audit line to be on disk: see README).  Everything started here or by the bench is killed by PID and
# the temp dir removed by the EXIT trap.  Loopback and ipc only.
#
# The PINs are on softhsm2-util's command line only because this is a
# throwaway token; hsmkeyd and the bench read the PIN from a 0600 file.

set -uo pipefail

: "${HSMKEYD:?HSMKEYD must name the hsmkeyd binary}"
: "${HSMKEY_BENCH:?HSMKEY_BENCH must name the hsmkey-bench binary}"
SOFTHSM_MODULE=${SOFTHSM_MODULE:-/usr/lib/softhsm/libsofthsm2.so}
P11KIT_CLIENT_MODULE=${P11KIT_CLIENT_MODULE:-}
if [ -z "$P11KIT_CLIENT_MODULE" ]; then
	for m in /usr/lib/x86_64-linux-gnu/pkcs11/p11-kit-client.so \
	    /usr/lib/*/pkcs11/p11-kit-client.so \
	    /usr/lib/pkcs11/p11-kit-client.so; do
		if [ -f "$m" ]; then
			P11KIT_CLIENT_MODULE=$m
			break
		fi
	done
fi

# Under -Db_sanitize=address (scripts/test's build-asan): SoftHSM 2.6.1
# leaks one ASN1_OBJECT per C_SignInit with an Ed25519 key, in hsmkeyd and
# in the bench's raw rows alike.  tests/lsan.supp suppresses leaks inside
# libsofthsm2.so, which LSan can only see with the slow unwinder (libcrypto
# has no frame pointers).  Ignored by builds without the sanitizers.
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/softhsm.sh
. "$HERE/../softhsm.sh"
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}fast_unwind_on_malloc=0"
export LSAN_OPTIONS="${LSAN_OPTIONS:-suppressions=$HERE/../lsan.supp:print_suppressions=0}"

T=
P11_PID=

teardown()
{
	local rc=$? f p
	trap - EXIT
	if [ -n "$P11_PID" ]; then
		kill -TERM "$P11_PID" 2>/dev/null
		wait "$P11_PID" 2>/dev/null
	fi
	if [ -n "$T" ] && [ -d "$T" ]; then
		# processes the bench started, if it died before it could
		for f in "$T"/*.pid; do
			[ -f "$f" ] || continue
			p=$(cat "$f")
			[ -n "$p" ] && kill -KILL "$p" 2>/dev/null
		done
		if [ "$rc" -ne 0 ]; then
			for f in "$T"/hsmkeyd.*.log "$T"/hsmkeyd-10k.*.log \
			    "$T"/hsmkeyd-slow.*.log "$T"/hsmkeyd-nogate.*.log \
			    "$T"/echo.*.log \
			    "$T"/p11-kit.log "$T"/bootstrap.log; do
				[ -s "$f" ] || continue
				echo "---- last lines of ${f#"$T"/}" >&2
				tail -n 20 "$f" >&2
			done
		fi
		if [ "${HK_KEEP:-0}" = 1 ]; then
			echo "# kept $T" >&2
		else
			rm -rf "$T"
		fi
	fi
	exit "$rc"
}

SMOKE=0
SLOW=
for a in "$@"; do
	[ "$a" = --smoke ] && SMOKE=1
	[ "$a" = --slow-hsm ] && SLOW=1
done

T=$(mktemp -d "${TMPDIR:-/tmp}/hsmkey-bench.XXXXXX") || exit 1
trap teardown EXIT
trap 'exit 130' INT TERM

hk_token_init "$T" "$T/pin" || exit 1
unset PIN

IPC_URL="ipc://$T/hsmkey.sock"
TCP_URL="tcp://127.0.0.1:$(hk_free_port)"
ECHO_TCP_URL="tcp://127.0.0.1:$(hk_free_port)"
# write_conf FILE LISTEN PIN_FILE [SUFFIX [MODULE [EXTRA]]]: an hsmkeyd
# config whose audit log and metrics file are $T/audit SUFFIX .log and
# $T/hsmkey SUFFIX .prom.  With a MODULE: that [pkcs11] module, the
# default workers, and EXTRA appended to [pkcs11]; else SoftHSM and
# workers = 2.
write_conf()
{
	local workers="workers = 2"
	[ -n "${5:-}" ] && workers="; workers: the default"
	cat >"$1" <<EOC
; written by tests/bench/run.sh
[service]
listen = $2
$workers
log = stderr
log_level = info

[pkcs11]
module = ${5:-$SOFTHSM_MODULE}
token = pkcs11:token=hsmkey
pin_file = $3
${6:-}

[auth]
clock_window = 30s

[audit]
path = $T/audit${4:-}.log
signs = ${HK_BENCH_AUDIT_SIGNS:-yes}

[metrics]
path = $T/hsmkey${4:-}.prom
EOC
}

write_conf "$T/hsmkeyd.conf" "$IPC_URL $TCP_URL" "$T/pin"
if ! "$HSMKEYD" --config "$T/hsmkeyd.conf" --bootstrap-admin admin \
    --credentials-out "$T/admin.cred" >"$T/bootstrap.out" \
    2>"$T/bootstrap.log" </dev/null; then
	cat "$T/bootstrap.log" >&2
	echo "bench: hsmkeyd --bootstrap-admin failed" >&2
	exit 1
fi

P11_ARGS=()
if [ -n "$P11KIT_CLIENT_MODULE" ] && command -v p11-kit >/dev/null; then
	p11-kit server -f -n "$T/p11-kit.sock" --provider "$SOFTHSM_MODULE" \
	    "pkcs11:token=hsmkey" >"$T/p11-kit.log" 2>&1 </dev/null &
	P11_PID=$!
	for ((i = 0; i < 100; i++)); do
		[ -S "$T/p11-kit.sock" ] && break
		if ! kill -0 "$P11_PID" 2>/dev/null; then
			break
		fi
		sleep 0.05
	done
	if [ -S "$T/p11-kit.sock" ]; then
		export P11_KIT_SERVER_ADDRESS="unix:path=$T/p11-kit.sock"
		P11_ARGS=(--p11kit-module "$P11KIT_CLIENT_MODULE")
	else
		echo "bench: p11-kit server did not start; no p11-kit rows" >&2
		cat "$T/p11-kit.log" >&2
	fi
else
	echo "bench: p11-kit client module not found; no p11-kit rows" >&2
fi

# the slow-HSM rows: two more hsmkeyd on the fault-injecting module
# (tests/faultp11, $FAULTP11) around the same token, with and without the
# token-slot gate; the bench rewrites the module's control file
SLOW_ARGS=()
if [ -n "${FAULTP11:-}" ] && [ -f "$FAULTP11" ]; then
	write_conf "$T/hsmkeyd-slow.conf" "ipc://$T/hsmkey-slow.sock" \
	    "$T/pin" -slow "$FAULTP11"
	write_conf "$T/hsmkeyd-nogate.conf" "ipc://$T/hsmkey-nogate.sock" \
	    "$T/pin" -nogate "$FAULTP11" "max_parallel = 0"
	SLOW_ARGS=(--slow-conf "$T/hsmkeyd-slow.conf"
	    --slow-ipc "ipc://$T/hsmkey-slow.sock"
	    --nogate-conf "$T/hsmkeyd-nogate.conf"
	    --nogate-ipc "ipc://$T/hsmkey-nogate.sock"
	    --slow-control "$T/faultp11.ctl")
elif [ -n "$SLOW" ]; then
	echo "bench: --slow-hsm needs FAULTP11 (tests/faultp11/faultp11.so)" >&2
	exit 2
else
	echo "bench: FAULTP11 not set; no slow-HSM rows" >&2
fi

# the many-versions fixture: a copy for this run, its own hsmkeyd config
FIX_ARGS=()
FIX=${HK_FIXTURE_DIR:-}
if [ "$SMOKE" = 0 ] && [ -n "$FIX" ] && [ -f "$FIX/fixture.txt" ]; then
	t0=$(date +%s.%N)
	if cp -a "$FIX" "$T/fixture"; then
		t1=$(date +%s.%N)
		COPY_S=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
		echo "bench: fixture $FIX copied in $COPY_S s" >&2
		cat >"$T/fixture/softhsm2.conf" <<EOC
directories.tokendir = $T/fixture/tokens
objectstore.backend = file
log.level = ERROR
EOC
		write_conf "$T/hsmkeyd-10k.conf" "ipc://$T/hsmkey-10k.sock" \
		    "$T/fixture/pin" -10k
		FIX_ARGS=(--fixture "$T/fixture" --fixture-ipc
		    "ipc://$T/hsmkey-10k.sock" --fixture-copy-s "$COPY_S")
	else
		echo "bench: cannot copy $FIX; no 10,000-version row" >&2
	fi
fi

"$HSMKEY_BENCH" "$@" --dir "$T" --hsmkeyd "$HSMKEYD" \
    --ipc "$IPC_URL" --tcp "$TCP_URL" --echo-tcp "$ECHO_TCP_URL" \
    --module "$SOFTHSM_MODULE" ${P11_ARGS[@]+"${P11_ARGS[@]}"} \
    ${FIX_ARGS[@]+"${FIX_ARGS[@]}"} ${SLOW_ARGS[@]+"${SLOW_ARGS[@]}"}
