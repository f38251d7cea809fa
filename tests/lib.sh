# shellcheck shell=bash
#
# lib.sh: helpers for the integration tests, sourced by tests/test_*.sh.
#
# Every test runs against a real SoftHSMv2 token in a fresh temp dir and a
# real hsmkeyd on real sockets (p11-kit's test-softhsm2.sh shape):
#
#	. "$(dirname "$0")/lib.sh"
#	hk_setup [--tcp]	# temp dir, token, PIN, config, first admin
#	hk_start		# hsmkeyd --foreground in the background
#	expect_exit 0 hk create k1
#	hk_stop			# SIGTERM by PID, asserts exit status 0
#	hk_finish		# prints "N passed, N failed", exits 0/1
#
# Environment (set by tests/meson.build): HSMKEYD, HSMKEY (paths of the
# binaries), optional CONCURRENT_SIGN, SOFTHSM_MODULE, HK_MODULE (the
# config's [pkcs11] module when set, e.g. tests/faultp11's wrapper; default
# SOFTHSM_MODULE; pkcs11-tool always uses SOFTHSM_MODULE), HK_KEEP=1 keeps the
# temp dir for debugging.  Everything a test starts is killed by PID and the
# temp dir is removed by an EXIT trap, whatever happens.
#
# The PIN is passed on the command line of softhsm2-util and pkcs11-tool
# here only because this is a throwaway test token; hsmkeyd reads it from
# pin_file.

set -uo pipefail
shopt -s lastpipe

: "${HSMKEYD:?HSMKEYD must name the hsmkeyd binary}"
: "${HSMKEY:?HSMKEY must name the hsmkey binary}"
SOFTHSM_MODULE=${SOFTHSM_MODULE:-/usr/lib/softhsm/libsofthsm2.so}
# shellcheck source=tests/softhsm.sh
. "$(dirname "${BASH_SOURCE[0]}")/softhsm.sh"
# HK_VALGRIND (scripts/memcheck only): a command prefix, e.g. "valgrind
# --log-file=DIR/%p.log ...", put before every hsmkeyd and hsmkey a test
# starts after hk_setup: $HSMKEYD, $HSMKEYD_HOOKED and $HSMKEY then name
# wrapper scripts in $T/vg that exec the prefix and the real binary.
# HK_TIME_SCALE (default 1; memcheck's 20) multiplies the harness's waits:
# HK_READY_TIMEOUT's default and hk_wait_exit's (so hk_stop's) bound.
HK_VALGRIND=${HK_VALGRIND:-}
HK_TIME_SCALE=${HK_TIME_SCALE:-1}
# Generous under sanitizers: a slow start is not a failure.
HK_READY_TIMEOUT=${HK_READY_TIMEOUT:-$((20 * HK_TIME_SCALE))}
# The daemon loads SoftHSM, whose leaks tests/lsan.supp suppresses; that
# needs whole malloc stacks, and OpenSSL has no frame pointers, so the
# daemon (only: it costs time) unwinds the slow way under ASan.
HK_DAEMON_ASAN_OPTIONS=${ASAN_OPTIONS:-}
case $HK_DAEMON_ASAN_OPTIONS in
*fast_unwind_on_malloc*) ;;
*) HK_DAEMON_ASAN_OPTIONS=${HK_DAEMON_ASAN_OPTIONS:+$HK_DAEMON_ASAN_OPTIONS:}fast_unwind_on_malloc=0 ;;
esac
# Debian's python3 directly: a version manager's shim costs ~1 s a call.
if [ -z "${HK_PYTHON:-}" ]; then
	if [ -x /usr/bin/python3 ]; then
		HK_PYTHON=/usr/bin/python3
	else
		HK_PYTHON=python3
	fi
fi

HK_PASS=0
HK_FAIL=0
HK_PIDS=()
HK_PID=
HK_LOG=
HK_NSTART=0
T=
PIN=
HK_OUT=
HK_ERR=
HK_RC=0
HK_TEST_NAME=$(basename "$0" .sh)

# ---------------------------------------------------------------- reporting

ok()
{
	HK_PASS=$((HK_PASS + 1))
	printf 'ok - %s\n' "$*"
}

fail()
{
	HK_FAIL=$((HK_FAIL + 1))
	printf 'FAIL - %s\n' "$*"
}

# note MESSAGE: information that is neither a pass nor a failure.
note()
{
	printf '# %s\n' "$*"
}

# check DESCRIPTION CMD...: passes when CMD exits 0.
check()
{
	local desc=$1
	shift
	if "$@"; then
		ok "$desc"
		return 0
	fi
	fail "$desc"
	return 1
}

# hk_asan_build: true when $HSMKEYD was built with AddressSanitizer. ldd's
# output is read whole first: under pipefail, "ldd | grep -q" fails when
# grep stops reading before ldd is done writing (SIGPIPE).
hk_asan_build()
{
	local libs

	libs=$(ldd "$HSMKEYD" 2>/dev/null) || true
	case $libs in
	*libasan*) return 0 ;;
	esac
	return 1
}

# hk_need_jwcrypto: sets PY to Debian's own python3 (not the one first on
# PATH) and JWS_CHECK to tests/jws_check.py, or skips the test when that
# python3 lacks python3-jwcrypto or python3-cryptography (scripts/deps.sh
# installs them).
hk_need_jwcrypto()
{
	PY=/usr/bin/python3
	JWS_CHECK=$SOURCE_DIR/tests/jws_check.py
	if ! "$PY" -c 'import jwcrypto, cryptography' 2>/dev/null; then
		echo "1..0 # SKIP $PY lacks python3-jwcrypto (scripts/deps.sh)"
		exit 77
	fi
}

# hk_slow START_US CMD...: notes a command that took more than 2 s.
hk_slow()
{
	local us=$((${EPOCHREALTIME/./} - $1))
	shift
	if [ "$us" -gt ${HK_SLOW_US:-2000000} ]; then
		note "slow: $((us / 1000)) ms: $*"
	fi
}

# hk_run CMD...: runs CMD (stdin is the caller's), keeps its exit status in
# $HK_RC, its stdout in $HK_OUT and $T/out, its stderr in $HK_ERR and
# $T/err, and appends both to $T/captured.stdout and $T/captured.stderr.
hk_run()
{
	local t0=${EPOCHREALTIME/./}
	"$@" >"$T/out" 2>"$T/err"
	HK_RC=$?
	hk_slow "$t0" "$@"
	HK_OUT=$(cat "$T/out")
	HK_ERR=$(cat "$T/err")
	{
		printf '$ %s\n' "$*"
		cat "$T/err"
	} >>"$T/captured.stderr"
	cat "$T/out" >>"$T/captured.stdout"
}

# hk_run_failed WHAT: a fail for the last hk_run, with its output.
hk_run_failed()
{
	fail "$1"
	sed -e 's/^/    stderr: /' "$T/err" | head -n 20
	sed -e 's/^/    stdout: /' "$T/out" | head -n 5
	return 1
}

# expect_exit N CMD...: hk_run CMD, and asserts that it exits N.  Prints
# the command's stderr on a mismatch.
expect_exit()
{
	local want=$1
	shift
	hk_run "$@"
	if [ "$HK_RC" -eq "$want" ]; then
		ok "exit $want: $*"
		return 0
	fi
	hk_run_failed "exit $HK_RC, want $want: $*"
}

# expect_fail CMD...: like expect_exit but accepts any non-zero exit.
expect_fail()
{
	hk_run "$@"
	if [ "$HK_RC" -ne 0 ]; then
		ok "fails (exit $HK_RC): $*"
		return 0
	fi
	hk_run_failed "exit 0, want a failure: $*"
}

# expect_one_line_error: the last command's stderr is exactly one
# non-empty line (DESIGN.md: errors are one line on stderr).
expect_one_line_error()
{
	local n
	n=$(grep -c . "$T/err")
	if [ "$n" -eq 1 ]; then
		ok "one-line error: $HK_ERR"
	else
		fail "error is $n lines, want 1:"
		sed -e 's/^/    stderr: /' "$T/err" | head -n 20
	fi
}

# hk_valgrind_wrap: with HK_VALGRIND set, points HSMKEYD, HSMKEYD_HOOKED
# and HSMKEY at wrappers ($T/vg/) that run them under it (hk_setup).  A
# wrapper execs, so $! is the valgrind'ed process itself.  The CLI's
# wrapper gives it --timeout 30 s and --connect-timeout 3 s x HK_TIME_SCALE
# first (its defaults; a --timeout the test gives comes later and wins).
hk_valgrind_wrap()
{
	local v real args
	[ -n "$HK_VALGRIND" ] || return 0
	mkdir -p "$T/vg" || exit 1
	for v in HSMKEYD HSMKEYD_HOOKED HSMKEY; do
		real=${!v:-}
		[ -n "$real" ] || continue
		args=
		if [ "$v" = HSMKEY ]; then
			args="--timeout $((30 * HK_TIME_SCALE))"
			args+=" --connect-timeout $((3 * HK_TIME_SCALE)) "
		fi
		printf '#!/bin/sh\nexec %s %q %s"$@"\n' "$HK_VALGRIND" "$real" \
		    "$args" >"$T/vg/$(basename "$real")" || exit 1
		chmod 755 "$T/vg/$(basename "$real")"
		printf -v "$v" '%s' "$T/vg/$(basename "$real")"
	done
}

# ------------------------------------------------------------ token, config

# hk_write_config FILE LISTEN...: a service config for this test's token.
# HK_STATE_TAG (e.g. -b), when set, names the audit log and metrics file
# $T/audit$HK_STATE_TAG.log and $T/hsmkey$HK_STATE_TAG.prom, for a second
# service on the same token.
hk_write_config()
{
	local file=$1
	shift
	cat >"$file" <<EOF
; written by tests/lib.sh for $HK_TEST_NAME
[service]
listen = $*
workers = ${HK_WORKERS:-2}
log = stderr
log_level = ${HK_LOG_LEVEL:-info}

[pkcs11]
module = ${HK_MODULE:-$SOFTHSM_MODULE}
token = pkcs11:token=hsmkey
pin_file = $T/pin

[auth]
clock_window = ${HK_CLOCK_WINDOW:-30s}
secret_lifetime = 90d

[audit]
path = $T/audit${HK_STATE_TAG:-}.log
signs = ${HK_AUDIT_SIGNS:-yes}
refused_interval = ${HK_REFUSED_INTERVAL:-1s}

[metrics]
path = $T/hsmkey${HK_STATE_TAG:-}.prom
EOF
}

# hk_faultp11: the services of this test load the fault-injecting module
# (tests/faultp11, $FAULTP11) around SoftHSM; call before hk_setup.  After
# hk_setup, fault_rules LINE... replaces its rules (the control file
# $FAULT_CTL, written to a temp file and renamed over); each injected
# fault is a line of $FAULT_LOG.
hk_faultp11()
{
	: "${FAULTP11:?FAULTP11 must name tests/faultp11/faultp11.so}"
	HK_MODULE=$FAULTP11
}

fault_rules()
{
	FAULT_CTL=$T/faultp11.ctl
	FAULT_LOG=$T/faultp11.log
	export FAULTP11_CONTROL=$FAULT_CTL
	{
		printf 'log %s\n' "$FAULT_LOG"
		printf '%s\n' "$@"
	} >"$FAULT_CTL.tmp" && mv -f "$FAULT_CTL.tmp" "$FAULT_CTL"
}

# hk_tmpdir: the test's temp dir $T, removed (and everything in HK_PIDS
# killed) by the EXIT trap; for tests that make their token themselves
# (hk_setup does the rest).
hk_tmpdir()
{
	T=$(mktemp -d "${TMPDIR:-/tmp}/hsmkey-test.XXXXXX") || {
		echo "mktemp failed" >&2
		exit 1
	}
	trap hk_teardown EXIT
	trap 'exit 130' INT TERM
	: >"$T/captured.stderr"
	: >"$T/captured.stdout"
	hk_valgrind_wrap
}

# hk_bootstrap: the first admin, $T/admin.cred; exits on failure.
hk_bootstrap()
{
	if ! ASAN_OPTIONS=$HK_DAEMON_ASAN_OPTIONS \
	    "$HSMKEYD" --config "$T/hsmkeyd.conf" --bootstrap-admin admin \
	    --credentials-out "$T/admin.cred" \
	    >"$T/bootstrap.out" 2>"$T/bootstrap.log" </dev/null; then
		sed -e 's/^/    bootstrap: /' "$T/bootstrap.log"
		fail "hsmkeyd --bootstrap-admin admin"
		exit 1
	fi
}

# hk_setup [--tcp]: temp dir, SoftHSM token with a random PIN, the service
# config ($T/hsmkeyd.conf, ipc socket $T/hsmkey.sock, plus a loopback tcp
# endpoint $HK_TCP_URL with --tcp) and the first admin ($T/admin.cred).
hk_setup()
{
	local tcp=0
	[ "${1:-}" = "--tcp" ] && tcp=1
	hk_tmpdir
	hk_token_init "$T" "$T/pin" || exit 1
	HK_SOCK_URL="ipc://$T/hsmkey.sock"
	HK_TCP_URL=
	if [ "$tcp" -eq 1 ]; then
		HK_TCP_URL="tcp://127.0.0.1:$(hk_free_port)"
	fi
	hk_write_config "$T/hsmkeyd.conf" "$HK_SOCK_URL" $HK_TCP_URL
	hk_bootstrap
	ok "token initialised, admin bootstrapped in $T"
}

# hk_start [CONF]: starts hsmkeyd --foreground in the background with its
# stderr in a new log file ($HK_LOG), waits until it logs "ready", and sets
# $HK_PID.  Environment given on the call line (e.g. HSMKEYD=$HSMKEYD_HOOKED
# HSMKEYD_TEST_PUBLIC_OBJECTS=yes) reaches the daemon.  Returns 1 (after a fail) if it never gets ready.
hk_start()
{
	local conf=${1:-$T/hsmkeyd.conf} i
	HK_NSTART=$((HK_NSTART + 1))
	HK_LOG="$T/hsmkeyd.$HK_NSTART.log"
	ASAN_OPTIONS=$HK_DAEMON_ASAN_OPTIONS \
	    "$HSMKEYD" --config "$conf" --foreground \
	    >"$T/hsmkeyd.$HK_NSTART.out" 2>"$HK_LOG" </dev/null &
	HK_PID=$!
	HK_PIDS+=("$HK_PID")
	for ((i = 0; i < HK_READY_TIMEOUT * 10; i++)); do
		if grep -q ready "$HK_LOG" 2>/dev/null; then
			return 0
		fi
		if ! kill -0 "$HK_PID" 2>/dev/null; then
			wait "$HK_PID"
			fail "hsmkeyd exited ($?) before it was ready ($HK_LOG):"
			sed -e 's/^/    hsmkeyd: /' "$HK_LOG" | tail -n 30
			return 1
		fi
		sleep 0.1
	done
	fail "hsmkeyd not ready after ${HK_READY_TIMEOUT}s ($HK_LOG):"
	sed -e 's/^/    hsmkeyd: /' "$HK_LOG" | tail -n 30
	return 1
}

hk_forget_pid()
{
	local p keep=()
	for p in "${HK_PIDS[@]}"; do
		[ "$p" = "$1" ] || keep+=("$p")
	done
	HK_PIDS=("${keep[@]}")
}

# hk_wait_exit PID SECONDS: waits (bounded, SECONDS scaled by
# HK_TIME_SCALE) for PID to end; sets HK_RC to its exit status (128+signal
# when killed).  Returns 1 if still running.
hk_wait_exit()
{
	local pid=$1 secs=$(($2 * HK_TIME_SCALE)) i
	for ((i = 0; i < secs * 10; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		return 1
	fi
	wait "$pid" 2>/dev/null
	HK_RC=$?
	hk_forget_pid "$pid"
	return 0
}

# hk_stop [PID]: SIGTERM, wait up to 15 s, then SIGKILL; asserts that the
# daemon stopped cleanly with exit status 0.
hk_stop()
{
	local pid=${1:-$HK_PID}
	[ -n "$pid" ] || return 0
	kill -TERM "$pid" 2>/dev/null
	if ! hk_wait_exit "$pid" 15; then
		kill -KILL "$pid" 2>/dev/null
		hk_wait_exit "$pid" 5
		fail "hsmkeyd $pid ignored SIGTERM for $((15 * HK_TIME_SCALE)) s (killed)"
		return 1
	fi
	if [ "$HK_RC" -eq 0 ]; then
		ok "hsmkeyd $pid stopped cleanly on SIGTERM"
		return 0
	fi
	fail "hsmkeyd $pid exited $HK_RC on SIGTERM, want 0"
	grep -h -A3 -E 'Sanitizer|runtime error' "$T"/hsmkeyd.*.log | head -n 40
	return 1
}

# hk_teardown: the EXIT trap.  Kills everything in HK_PIDS still running
# (a PID, or -PGID: a process group a test started with set -m),
# shows the daemon logs when something failed, removes the temp dir.
hk_teardown()
{
	local rc=$? p
	trap - EXIT
	# Under valgrind a daemon still running gets SIGTERM first: a clean
	# exit is when its leaks are counted.
	if [ -n "$HK_VALGRIND" ]; then
		for p in "${HK_PIDS[@]}"; do
			kill -TERM "$p" 2>/dev/null && hk_wait_exit "$p" 15
		done
	fi
	for p in "${HK_PIDS[@]}"; do
		kill -KILL -- "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	HK_PIDS=()
	if [ -n "$T" ] && [ -d "$T" ]; then
		if [ "$HK_FAIL" -ne 0 ] || [ "$rc" -ne 0 ]; then
			for p in "$T"/hsmkeyd.*.log "$T/bootstrap.log"; do
				[ -s "$p" ] || continue
				echo "---- last lines of ${p#"$T"/}"
				tail -n 25 "$p"
			done
		fi
		if [ "${HK_KEEP:-0}" = 1 ]; then
			echo "# kept $T"
		else
			rm -rf "$T"
		fi
	fi
	if [ "$rc" -eq 0 ] && [ "$HK_FAIL" -ne 0 ]; then
		rc=1
	fi
	exit "$rc"
}

# hk_finish: the last line of every test.
hk_finish()
{
	echo "$HK_TEST_NAME: $HK_PASS passed, $HK_FAIL failed"
	if [ "$HK_FAIL" -ne 0 ]; then
		exit 1
	fi
	exit 0
}

# proc_kb PID FIELD: a field of /proc/PID/status in kB (VmRSS, VmHWM).
proc_kb()
{
	awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"
}

# proc_fds PID: how many descriptors PID holds; nothing when /proc/PID/fd
# cannot be read (hsmkeyd is not dumpable: root only, then).
proc_fds()
{
	local n
	n=$(ls "/proc/$1/fd" 2>/dev/null | wc -l) || return 0
	[ "$n" -gt 0 ] && printf '%s\n' "$n"
	return 0
}

# ------------------------------------------------------------------ clients

# hk ARGS...: the CLI as the bootstrapped admin.
hk()
{
	"$HSMKEY" --credentials "$T/admin.cred" "$@"
}

# cred_value FILE KEY: a value from an INI credentials file.
cred_value()
{
	sed -n -e "s/^[[:space:]]*$2[[:space:]]*=[[:space:]]*//p" "$1" |
	    sed -e 's/[[:space:]]*$//' | head -n 1
}

# hk_service_key NAME: NAME is one of the service's own keys, which no
# client may sign with (service/svckeys.c).
hk_service_key()
{
	case $1 in
	hsmkey-audit | hsmkey-keyset) return 0 ;;
	esac
	return 1
}

# sig_version TEXT: N of "hsmkey:v<N>:<base64>".
sig_version()
{
	printf '%s\n' "$1" | sed -n -e 's/^hsmkey:v\([0-9][0-9]*\):.*/\1/p'
}

# sig_to_file TEXT FILE: the signature bytes of a text-form signature.
sig_to_file()
{
	printf '%s' "${1##*:}" | base64 -d >"$2"
}

# A JSON reader that does not depend on the exact layout of the CLI's
# --json output: it finds the object that has a "versions" list and prints
# "primary P" and one "v<N> <state>" line per version.  States are
# normalised: "STATE_VERIFY_ONLY", "verify_only" and 3 read "verify-only".
HK_PY_VERSIONS='
import json, sys
STATES = {0: "unspecified", 1: "pending", 2: "active", 3: "verify-only",
          4: "disabled", 5: "destroy-scheduled", 6: "destroyed"}
def norm(s):
    if isinstance(s, int):
        return STATES.get(s, str(s))
    s = str(s).lower()
    if s.startswith("state_"):
        s = s[6:]
    return s.replace("_", "-")
def find(o):
    if isinstance(o, dict):
        if isinstance(o.get("versions"), list):
            return o
        for v in o.values():
            r = find(v)
            if r is not None:
                return r
    elif isinstance(o, list):
        for v in o:
            r = find(v)
            if r is not None:
                return r
    return None
k = find(json.load(sys.stdin))
if k is None:
    sys.exit("no versions in the JSON")
primary = k.get("primary")
if not isinstance(primary, int) or isinstance(primary, bool):
    primary = 0
for v in k["versions"]:
    if v.get("primary") is True:
        primary = v.get("version")
print("primary", primary)
for v in k["versions"]:
    print("v%s %s" % (v.get("version"), norm(v.get("state"))))
'

# key_versions NAME: "primary P" and "v<N> <state>" lines from describe.
# Fails (after a fail) when describe or the JSON does.
key_versions()
{
	local out
	if ! out=$(hk --json describe "$1" 2>"$T/kv.err"); then
		fail "hsmkey --json describe $1: $(cat "$T/kv.err")"
		return 1
	fi
	if ! printf '%s' "$out" | "$HK_PYTHON" -c "$HK_PY_VERSIONS"; then
		fail "hsmkey --json describe $1: unreadable JSON: $out"
		return 1
	fi
}

# expect_versions NAME "primary P" "v1 state" ...: describe shows exactly
# these lines (in version order).
expect_versions()
{
	local name=$1 got want
	shift
	got=$(key_versions "$name") || return 1
	want=$(printf '%s\n' "$@")
	if [ "$got" = "$want" ]; then
		ok "describe $name: $(printf '%s' "$got" | tr '\n' ' ')"
		return 0
	fi
	fail "describe $name: got [$(printf '%s' "$got" | tr '\n' ' ')]," \
	    "want [$(printf '%s' "$want" | tr '\n' ' ')]"
	return 1
}

# token_objects: pkcs11-tool's listing of every object (logged in).
token_objects()
{
	pkcs11-tool --module "$SOFTHSM_MODULE" --token-label hsmkey \
	    --login --pin "$PIN" -O 2>"$T/p11tool.err"
}

# token_label_list: the CKA_LABEL of every object, one per line.
# (pkcs11-tool quotes the labels of data objects: 'hsmkey-key:k1'.)
token_label_list()
{
	token_objects |
	    sed -n -e 's/^[[:space:]]*label:[[:space:]]*//p' |
	    sed -e 's/[[:space:]]*$//' -e "s/^'\\(.*\\)'\$/\\1/"
}

# token_label_count LABEL: how many objects carry exactly this label.
token_label_count()
{
	token_label_list | awk -v l="$1" '$0 == l { n++ } END { print n + 0 }'
}

# token_labels_with_prefix PREFIX: the labels starting with PREFIX, one per
# object.
token_labels_with_prefix()
{
	token_label_list | awk -v p="$1" 'index($0, p) == 1'
}

# not_same FILE1 FILE2: the files differ.
not_same()
{
	! cmp -s "$1" "$2"
}

# json_ok: stdin parses as JSON.
json_ok()
{
	"$HK_PYTHON" -c 'import json, sys; json.load(sys.stdin)'
}

# ------------------------------------------------------------ crash checks

# expect_killed PID WHAT [SECONDS]: PID ends within SECONDS (default 15),
# killed by SIGKILL (exit status 137); else a fail (and PID is killed).
expect_killed()
{
	local pid=$1 what=$2 secs=${3:-15}
	if ! hk_wait_exit "$pid" "$secs"; then
		fail "$what: hsmkeyd $pid still running after ${secs}s"
		kill -KILL "$pid" 2>/dev/null
		hk_wait_exit "$pid" 5
		return 1
	fi
	if [ "$HK_RC" -ne 137 ]; then
		fail "$what: hsmkeyd $pid exited $HK_RC, want 137 (SIGKILL)"
		return 1
	fi
	ok "$what: hsmkeyd died of SIGKILL"
}

# openssl_verify_sig PEM SIG MSGFILE|--digest HEX: openssl alone (no
# service) accepts the text-form ECDSA signature SIG (hsmkey:vN:...) over
# the message, or over the SHA-256 digest HEX, with the public key PEM.
openssl_verify_sig()
{
	local pem=$1 sig=$2
	sig_to_file "$sig" "$T/ossl.sig" || return 1
	if [ "$3" = --digest ]; then
		printf '%s' "$4" | xxd -r -p >"$T/ossl.dgst" &&
		    openssl pkeyutl -verify -pubin -inkey "$pem" \
			-in "$T/ossl.dgst" -sigfile "$T/ossl.sig" \
			>"$T/ossl.out" 2>&1
	else
		openssl dgst -sha256 -verify "$pem" -signature "$T/ossl.sig" \
		    "$3" >"$T/ossl.out" 2>&1
	fi
}

# sign_works NAME V MSGFILE [PEM]: NAME signs MSGFILE as version V, the
# service verifies it, and (with PEM, V's exported public key) so does
# openssl.  The signature is left in $HK_OUT.
sign_works()
{
	local name=$1 v=$2 msg=$3 pem=${4:-} sig
	expect_exit 0 hk sign "$name" --in "$msg" || return 1
	sig=$HK_OUT
	check "$name signs with v$v" test "$(sig_version "$sig")" = "$v" ||
	    return 1
	expect_exit 0 hk verify "$name" --sig "$sig" --in "$msg" || return 1
	if [ -n "$pem" ]; then
		check "openssl verifies $name v$v's signature" \
		    openssl_verify_sig "$pem" "$sig" "$msg" || return 1
	fi
	HK_OUT=$sig
}

# The whole token against the keyring and the client store: argv[1] is
# `hsmkey --json list`, argv[2] `hsmkey --json client list`, argv[3] the
# token's labels (one an object).  Prints one line per problem: a version
# of a key without exactly one private key object (none when destroyed),
# versions not numbered 1..N, a primary that is not the one active version
# marked primary, a key or client without exactly one record, a live secret
# without exactly one secret object, and every object nothing lists (an
# orphan).  Then "keys N versions N clients N objects N".  With argv[4]
# "lost-ok", a verify-only or disabled version without its key object is
# a "lost NAME vN" line instead of a problem (test_kill_loop.sh: SoftHSM
# rewrites an object file in place, so a kill inside C_SetAttributeValue,
# which clears CKA_SIGN on retired versions, can lose the object, or leave
# it with no attributes: pkcs11-tool's "<empty>" label, then a
# "lost <empty> N" line, when there are no more of them than lost
# versions plus argv[5], the objects SoftHSM left with no attributes
# when killed while it created them).
HK_PY_CONSISTENT='
import json, sys
from collections import Counter
lost_ok = sys.argv[4:5] == ["lost-ok"]
torn = int(sys.argv[5]) if len(sys.argv) > 5 else 0
keys = json.load(open(sys.argv[1]))["keys"]
clients = json.load(open(sys.argv[2]))["clients"]
labels = Counter(l.strip() for l in open(sys.argv[3]) if l.strip())
known = set()
nver = 0
nlost = 0
def want(label, n, what):
    known.add(label)
    if labels[label] != n:
        print("%s: %d objects %s, want %d" % (what, labels[label], label, n))
for k in keys:
    name, vs = k["name"], k["versions"]
    nums = [v["version"] for v in vs]
    nver += len(vs)
    if nums != list(range(1, len(vs) + 1)):
        print("key %s: versions %s, want 1..%d" % (name, nums, len(vs)))
    marked = [v["version"] for v in vs if v.get("primary") is True]
    active = [v["version"] for v in vs if v["state"] == "active"]
    if marked != [k["primary"]] or k["primary"] not in active:
        print("key %s: primary %s, marked %s, active %s" %
              (name, k["primary"], marked, active))
    want("hsmkey-key:" + name, 1, "key %s" % name)
    for v in vs:
        label = "hsmkey:%s:v%d" % (name, v["version"])
        if (lost_ok and labels[label] == 0 and
                v["state"] in ("verify-only", "disabled")):
            print("lost %s v%d" % (name, v["version"]))
            known.add(label)
            nlost += 1
            continue
        want(label,
             0 if v["state"] == "destroyed" else 1,
             "key %s v%d (%s)" % (name, v["version"], v["state"]))
for c in clients:
    want("hsmkey-client:" + c["id"], 1, "client %s" % c["id"])
    for s in c["secrets"]:
        want("hsmkey-secret:%s:%d" % (c["id"], s["number"]), 1,
             "client %s secret %d" % (c["id"], s["number"]))
for l, n in sorted(labels.items()):
    if lost_ok and l == "<empty>" and n <= nlost + torn:
        # the lost object itself, its attributes gone with its label
        print("lost <empty> %d" % n)
    elif l not in known:
        print("orphan: %d objects %s" % (n, l))
print("keys %d versions %d clients %d objects %d" %
      (len(keys), nver, len(clients), sum(labels.values())))
'

# token_consistent WHAT [lost-ok [TORN]]: the token holds exactly what the
# service lists (HK_PY_CONSISTENT): no orphan or missing object, no
# half-made version (lost-ok: lost versions, and as many objects with no
# attributes as they are, plus TORN).  Leaves the listings in $T/keys.json and
# $T/clients.json, and the versions lost (lost-ok) in $T/lost.txt.
token_consistent()
{
	local what=$1 out
	if ! hk --json list >"$T/keys.json" 2>"$T/tc.err" ||
	    ! hk --json client list >"$T/clients.json" 2>>"$T/tc.err" ||
	    ! token_label_list >"$T/labels.txt"; then
		fail "$what: cannot list keys, clients or the token:" \
		    "$(tr '\n' ' ' <"$T/tc.err") $(tr '\n' ' ' <"$T/p11tool.err")"
		return 1
	fi
	out=$("$HK_PYTHON" -c "$HK_PY_CONSISTENT" "$T/keys.json" \
	    "$T/clients.json" "$T/labels.txt" ${2:+"$2"} ${3:+"$3"})
	printf '%s\n' "$out" | sed -n -e 's/^lost //p' >"$T/lost.txt"
	out=$(printf '%s\n' "$out" | grep -v '^lost ')
	if [ "$(printf '%s\n' "$out" | wc -l)" -eq 1 ]; then
		ok "$what: the token matches the keyring and clients ($out)"
		return 0
	fi
	fail "$what: the token does not match the keyring and clients:"
	printf '%s\n' "$out" | sed -e 's/^/    /' | head -n 20
	return 1
}

# signer_loop_end PID STOPFILE OUT ERR WHAT: stops a signer_loop running in
# the background (creates its STOPFILE), waits for it, and passes when it
# exited 0 (no request failed), with its last line; its stderr (ERR) goes
# to the captured stderr.
signer_loop_end()
{
	touch "$2"
	if hk_wait_exit "$1" 30 && [ "$HK_RC" -eq 0 ]; then
		ok "signer loop $5: $(tail -n 1 "$3")"
	else
		fail "signer loop $5 (exit $HK_RC): $(tail -n 1 "$3")"
		sed -e 's/^/    stderr: /' "$4" | head -n 10
	fi
	cat "$4" >>"$T/captured.stderr"
}

# audit_receipts LOG FILE...: every signature received by a client (the
# first word of each line of FILE..., text form) has its audit line in LOG:
# a sign line with status OK whose "sigs" is the SHA-256 of its bytes (a
# reply is sent only after its line was fdatasync'ed).  Fails if one is
# missing or no signature was received.
audit_receipts()
{
	local log=$1 rc
	shift
	"$HK_PYTHON" - "$log" "$@" >"$T/receipts.out" <<'PY'
import base64, hashlib, json, sys
logged = set()
signs = 0
for line in open(sys.argv[1]):
    o = json.loads(line)
    if o.get("op") == "sign" and o.get("status") == "OK":
        logged.add(o["sigs"])
        signs += 1
received = 0
missing = []
for path in sys.argv[2:]:
    for text in open(path):
        text = text.strip()
        if not text:
            continue
        received += 1
        der = base64.b64decode(text.split()[0].rsplit(":", 1)[1])
        if hashlib.sha256(der).hexdigest() not in logged:
            missing.append(text)
print("received", received, "sign lines", signs, "missing", len(missing))
for m in missing[:5]:
    print("missing:", m)
sys.exit(1 if missing or received == 0 else 0)
PY
	rc=$?
	note "$(head -n 1 "$T/receipts.out")"
	if [ "$rc" -eq 0 ]; then
		ok "every received signature has its audit line"
		return 0
	fi
	fail "received signatures without an audit line:"
	sed -e 's/^/    /' "$T/receipts.out" | head -n 8
	return 1
}
