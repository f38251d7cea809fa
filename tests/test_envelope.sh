#!/usr/bin/env bash
#
# test_envelope.sh: the envelope rules seen from the wire
# (tests/envelope_rules.c): MAC, clock window, nonces and replay,
# idempotent resends, strict re-encoding, on ipc and on tcp.

. "$(dirname "$0")/lib.sh"

: "${ENVELOPE_RULES:?ENVELOPE_RULES must name the envelope_rules program}"

hk_setup --tcp
hk_start || exit 1

for url in "$HK_SOCK_URL" "$HK_TCP_URL"; do
	key=ek-${url%%:*}
	expect_exit 0 hk create "$key"
	if "$ENVELOPE_RULES" "$T/admin.cred" "$url" "$key" \
	    >"$T/er.out" 2>"$T/er.err"; then
		ok "envelope rules on $url: $(tail -n 1 "$T/er.out")"
	else
		fail "envelope rules on $url: $(tail -n 1 "$T/er.out")"
		grep -v '^ok' "$T/er.out" | sed -e 's/^/    /'
		sed -e 's/^/    stderr: /' "$T/er.err" | head -n 10
	fi
	check "hsmkeyd alive after the envelope rules on $url" kill -0 "$HK_PID"
	expect_versions "$key" "primary 2" "v1 verify-only" "v2 active"
done
expect_exit 0 hk health
hk_stop
hk_finish
