#!/usr/bin/env bash
#
# test_no_hooks.sh: the shipped hsmkeyd carries no test or benchmark switch
# (DESIGN.md "What we ship"; service/testhooks.h).  The binary names no
# HSMKEYD_ variable and no benchmark switch, only service/testhooks.c
# calls getenv() in service/, and the hooked test build, where it exists,
# is the only binary that has them (so the checks can fail).

. "$(dirname "$0")/lib.sh"

SRC=${SOURCE_DIR:-$(dirname "$0")/..}

# names_hooks BINARY: 0 if BINARY holds a hook's variable or switch.
names_hooks()
{
	strings -a "$1" | grep -E 'HSMKEYD_|yes-i-am-a-benchmark|AUTHENTICATION IS OFF' >/dev/null
}

if names_hooks "$HSMKEYD"; then
	fail "hsmkeyd names a test hook:"
	strings -a "$HSMKEYD" | grep -E 'HSMKEYD_|yes-i-am-a-benchmark' |
	    sed -e 's/^/    /'
else
	ok "hsmkeyd ($HSMKEYD) names no HSMKEYD_ variable or benchmark switch"
fi

if [ -n "${HSMKEYD_HOOKED:-}" ]; then
	check "hsmkeyd-hooked does name its hooks (the check above can fail)" \
	    names_hooks "$HSMKEYD_HOOKED"
else
	note "no hsmkeyd-hooked in this build (-Dtest_hooks=false)"
fi

others=$(grep -l 'getenv' "$SRC"/service/*.c "$SRC"/service/*.h |
    grep -v '/testhooks\.[ch]$' || true)
if [ -n "$others" ]; then
	fail "getenv() in service/ outside testhooks.c: $others"
else
	ok "no getenv() in service/ but in testhooks.c"
fi

hk_finish
