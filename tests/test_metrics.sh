#!/usr/bin/env bash
#
# test_metrics.sh: usage figures (README "Monitoring").  The per-version
# counters equal the signs and verifies made, the per-secret counters the
# requests and denials; `hsmkey stats` (text and --json) and `describe`
# show them; the [metrics] path file is rewritten every interval,
# atomically, parses as Prometheus text (a strict parser here; promtool
# too when it is installed) and carries every metric README lists.

. "$(dirname "$0")/lib.sh"

hk_setup
sed -i -e 's|^\[metrics\]$|[metrics]\ninterval = 1s|' "$T/hsmkeyd.conf"
PROM=$T/hsmkey.prom
MSG=$T/msg
printf 'count me\n' >"$MSG"
hk_start || exit 1

expect_exit 0 hk create mk
for i in 1 2 3 4 5 6 7; do
	expect_exit 0 hk sign mk --in "$MSG" >/dev/null
done
sig=$HK_OUT
expect_exit 0 hk verify mk --sig "$sig" --in "$MSG"
expect_exit 0 hk verify mk --sig "$sig" --in "$MSG"
expect_exit 0 hk client add bob --grant sign:mk --out "$T/bob.cred"
expect_exit 0 "$HSMKEY" --credentials "$T/bob.cred" sign mk --in "$MSG"
expect_exit 0 "$HSMKEY" --credentials "$T/bob.cred" sign mk --in "$MSG"
expect_exit 3 "$HSMKEY" --credentials "$T/bob.cred" rotate mk
expect_exit 0 hk rotate mk
expect_exit 0 hk sign mk --in "$MSG"

note "---- stats"
expect_exit 0 hk --json stats
check "--json stats parses" json_ok <"$T/out"
"$HK_PYTHON" - "$T/out" >"$T/stats.check" <<'PY'
import json, sys
st = json.load(open(sys.argv[1]))
v = {(x["key"], x["version"]): x for x in st["versions"]}
s = {(x["client"], x["secret"]): x for x in st["secrets"]}
want = [
    (v[("mk", 1)]["signs"], 9, "mk v1 signs"),
    (v[("mk", 1)]["verifies"], 2, "mk v1 verifies"),
    (v[("mk", 1)]["state"], "verify-only", "mk v1 state"),
    (v[("mk", 2)]["signs"], 1, "mk v2 signs"),
    (v[("mk", 2)]["state"], "active", "mk v2 state"),
    (s[("bob", 1)]["requests"], 3, "bob secret 1 requests"),
    (s[("bob", 1)]["denials"], 1, "bob secret 1 denials"),
    (s[("admin", 1)]["denials"], 0, "admin secret 1 denials"),
    (s[("bob", 1)]["last_use"] is not None, True, "bob last use set"),
]
bad = [f"{d}: {g!r}, want {w!r}" for g, w, d in want if g != w]
print("\n".join(bad) if bad else "ok")
sys.exit(1 if bad else 0)
PY
check "stats counters: $(tr '\n' ' ' <"$T/stats.check")" \
    test "$(cat "$T/stats.check")" = ok
expect_exit 0 hk stats
check "stats text shows mk v1 with 9 signs" \
    grep -q -E '^mk +v1 +verify-only +9 +2 ' "$T/out"
check "stats text shows bob's secret" grep -q -E '^bob +1 +3 +1 ' "$T/out"
expect_exit 0 "$HSMKEY" --credentials "$T/bob.cred" --json stats
check "a non-admin sees only its own secrets" \
    "$HK_PYTHON" -c 'import json,sys; s=json.load(sys.stdin)["secrets"]; sys.exit(0 if s and all(x["client"]=="bob" for x in s) else 1)' <"$T/out"
expect_exit 0 hk describe mk
check "describe shows v1's usage" grep -q -E '^  v1 +9 +2 +0 +20' "$T/out"
expect_exit 0 hk --json describe mk
check "--json describe has per-version signs" \
    "$HK_PYTHON" -c 'import json,sys; k=json.load(sys.stdin); sys.exit(0 if [v["signs"] for v in k["versions"]]==[9,1] else 1)' <"$T/out"

note "---- the metrics file"
# bob has made 4 requests by now: 2 signs, a denied rotate, stats
for ((i = 0; i < 50; i++)); do
	grep -q 'hsmkey_client_requests_total{client="bob",secret="1"} 4' \
	    "$PROM" 2>/dev/null && break
	sleep 0.1
done
check "the metrics file is rewritten within the interval" \
    grep -q 'hsmkey_client_requests_total{client="bob",secret="1"} 4' \
    "$PROM"
cp "$PROM" "$T/running.prom"

# prom_check FILE: a strict reader of the text exposition format 0.0.4.
prom_check()
{
	"$HK_PYTHON" - "$1" <<'PY'
import re, sys
NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\\\|\\"|\\n)*"'
SAMPLE = re.compile(r"^(%s)(\{(%s(?:,%s)*)?\})? ([^ ]+)(?: (-?\d+))?$" % (NAME, LABEL, LABEL))
types, helps, seen, errors = {}, set(), set(), []
series = {}
text = open(sys.argv[1]).read()
if not text.endswith("\n"):
    errors.append("no newline at the end")
for n, line in enumerate(text.split("\n")[:-1], 1):
    if line.startswith("# HELP "):
        name = line.split(" ")[2]
        if name in helps:
            errors.append(f"{n}: second HELP for {name}")
        helps.add(name)
        continue
    if line.startswith("# TYPE "):
        parts = line.split(" ")
        if len(parts) != 4 or parts[3] not in ("counter", "gauge", "histogram", "summary", "untyped"):
            errors.append(f"{n}: bad TYPE line")
            continue
        if parts[2] in types or parts[2] in seen:
            errors.append(f"{n}: TYPE of {parts[2]} late or twice")
        types[parts[2]] = parts[3]
        continue
    if line.startswith("#") or not line:
        errors.append(f"{n}: unexpected line {line!r}")
        continue
    m = SAMPLE.match(line)
    if not m:
        errors.append(f"{n}: not a sample: {line!r}")
        continue
    name, labels, value = m.group(1), m.group(3) or "", m.group(4)
    try:
        float(value)
    except ValueError:
        if value not in ("+Inf", "-Inf", "NaN"):
            errors.append(f"{n}: bad value {value!r}")
    family = name
    for suffix in ("_bucket", "_sum", "_count"):
        if name.endswith(suffix) and types.get(name[: -len(suffix)]) == "histogram":
            family = name[: -len(suffix)]
    if family not in types:
        errors.append(f"{n}: {name} has no TYPE before it")
    if types.get(family) == "counter" and not name.endswith("_total"):
        errors.append(f"{n}: counter {name} does not end in _total")
    key = (name, labels)
    if key in series:
        errors.append(f"{n}: duplicate series {name}{{{labels}}}")
    series[key] = float(value) if value not in ("+Inf", "-Inf", "NaN") else 0
    seen.add(family)
# histograms: cumulative buckets, +Inf equal to _count
buckets = {}
for (name, labels), v in series.items():
    if name.endswith("_bucket"):
        le = re.search(r'le="([^"]*)"', labels).group(1)
        rest = re.sub(r',?le="[^"]*"', "", labels)
        buckets.setdefault((name[:-7], rest), []).append((float(le), v))
for (fam, rest), bs in buckets.items():
    bs.sort()
    vals = [v for _, v in bs]
    if vals != sorted(vals):
        errors.append(f"{fam}{{{rest}}}: buckets not cumulative")
    if bs[-1][0] != float("inf"):
        errors.append(f"{fam}{{{rest}}}: no +Inf bucket")
    if series.get((fam + "_count", rest)) != bs[-1][1]:
        errors.append(f"{fam}{{{rest}}}: +Inf bucket differs from _count")
for e in errors[:10]:
    print(e)
sys.exit(1 if errors else 0)
PY
}

check "the metrics file parses as Prometheus text" prom_check "$T/running.prom"
if command -v promtool >/dev/null 2>&1; then
	check "promtool check metrics" \
	    sh -c "promtool check metrics <'$T/running.prom'"
else
	note "promtool not installed: the Python reader alone"
fi
for m in 'hsmkey_up 1' 'hsmkey_token_up 1' 'hsmkey_audit_up 1' \
    'hsmkey_signs_total{key="mk",version="1"} 9' \
    'hsmkey_verifies_total{key="mk",version="1"} 2' \
    'hsmkey_sign_errors_total{key="mk",version="1"} 0' \
    'hsmkey_version_state{key="mk",version="1",state="verify-only"} 1' \
    'hsmkey_version_state{key="mk",version="2",state="active"} 1' \
    'hsmkey_client_requests_total{client="bob",secret="1"} 4' \
    'hsmkey_client_denials_total{client="bob",secret="1"} 1' \
    'hsmkey_request_duration_seconds_bucket{op="sign",le="+Inf"} 10'; do
	check "metrics: $m" grep -q -F -x "$m" "$T/running.prom"
done
check "metrics: last use of mk v1 is a recent timestamp" \
    grep -q -E '^hsmkey_version_last_use_timestamp_seconds\{key="mk",version="1"\} [0-9]{10}\.[0-9]{3}$' "$T/running.prom"
check "metrics: bob's last use" \
    grep -q -E '^hsmkey_client_last_use_timestamp_seconds\{client="bob",secret="1"\} [0-9]{10}\.[0-9]{3}$' "$T/running.prom"
check "metrics: a histogram for denied (rotate) requests" \
    grep -q 'hsmkey_request_duration_seconds_count{op="rotate"} 2' "$T/running.prom"

note "---- atomic rewrite and the clean stop"
torn=0
for ((i = 0; i < 30; i++)); do
	tail -c 1 "$PROM" | od -An -c | grep -q '\\n' || torn=1
	sleep 0.1
done
check "a reader never sees a half-written file" test "$torn" = 0
hk_stop
check "no temporary file is left" test ! -e "$PROM.tmp"
check "after a clean stop the file says hsmkey_up 0" \
    grep -q -x 'hsmkey_up 0' "$PROM"
check "the last file parses too" prom_check "$PROM"
check "the file is world-readable for node_exporter (0644)" \
    test "$(stat -c %a "$PROM")" = 644

hk_finish
