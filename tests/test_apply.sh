#!/usr/bin/env bash
#
# test_apply.sh: hsmkey apply FILE (README "apply: provisioning as code")
# with dist/apply-example.ini: --dry-run changes nothing (hsmkey --json
# list, --json client list and the token's objects compared); apply makes
# the keys and clients, and the new credentials files sign with their
# grants only; a second apply is all "unchanged" and changes nothing; an
# edited file gives exactly its change lines; a key and a grant the file
# does not name are left alone, grants_exact takes away what is not listed,
# revoke_secrets revokes; bad files are one-line errors naming FILE:LINE
# with exit 2 and nothing changed; a failure midway (an injected token
# error) stops at its item and a rerun goes on; `client grant` by hand sets
# the grants exactly and is audited.

. "$(dirname "$0")/lib.sh"

hk_faultp11
hk_setup
fault_rules '# no rules'
hk_start || exit 1

EXAMPLE=$SOURCE_DIR/dist/apply-example.ini
MSG=$T/msg
printf 'provisioned\n' >"$MSG"
mkdir "$T/w" && cd "$T/w" || exit 1

# apply_state: what apply may change, as text: every key, every client
# (the admin's own secret's last use left out: each request moves it) and
# the token's object labels.
apply_state()
{
	hk --json list || return 1
	hk --json client list | "$HK_PYTHON" -c '
import json, sys
d = json.load(sys.stdin)
for c in d["clients"]:
    if c["id"] == "admin":
        for s in c["secrets"]:
            s.pop("last_used", None)
print(json.dumps(d, sort_keys=True))' || return 1
	token_label_list | sort
}

# unchanged_by WHAT CMD...: CMD leaves apply_state as it was.
unchanged_by()
{
	local what=$1
	shift
	apply_state >"$T/state.before" || return 1
	"$@"
	apply_state >"$T/state.after" || return 1
	if cmp -s "$T/state.before" "$T/state.after"; then
		ok "$what: the service is as it was"
		return 0
	fi
	fail "$what changed the service:"
	diff "$T/state.before" "$T/state.after" | head -n 10
	return 1
}

# plan_is LINE...: the last command's stdout is exactly these lines.
plan_is()
{
	local want
	want=$(printf '%s\n' "$@")
	if [ "$HK_OUT" = "$want" ]; then
		ok "plan: $(printf '%s' "$HK_OUT" | tr '\n' '|')"
		return 0
	fi
	fail "plan differs:"
	diff <(printf '%s\n' "$want") <(printf '%s\n' "$HK_OUT") | head -n 20
	return 1
}

# all_unchanged: every line of the last command's stdout says unchanged.
all_unchanged()
{
	[ -n "$HK_OUT" ] && ! printf '%s\n' "$HK_OUT" | grep -v -q '^unchanged '
}

# bad_file WHAT FILE LINE: apply FILE (and --dry-run) exit 2 with one
# line on stderr naming FILE:LINE, and change nothing.
bad_file()
{
	local what=$1 file=$2 line=$3
	unchanged_by "$what" expect_exit 2 hk apply "$file" || return 1
	expect_one_line_error
	check "$what: the error names $file:$line" \
	    grep -q -F "$file:$line: " "$T/err"
	expect_exit 2 hk apply --dry-run "$file"
}

signs_as()
{
	"$HSMKEY" --credentials "$1" sign "$2" --in "$MSG"
}

note "---- a key made by hand, which no file names"
expect_exit 0 hk create legacy --alg ecdsa-p384
expect_exit 0 hk policy legacy --verify-grace 2d
hk --json describe legacy >"$T/legacy.before"

note "---- --dry-run changes nothing"
cp "$EXAMPLE" a.ini
unchanged_by "apply --dry-run" expect_exit 0 hk apply --dry-run a.ini
plan_is \
    "create    key payments: alg ecdsa-p256, sign_overlap 1h, verify_grace 30d, rotate_every 90d, expires never" \
    "create    key tokens: alg ed25519, sign_overlap 10m, verify_grace 7d" \
    "create    key documents: alg rsa-3072, verify_grace 365d, expires 2040-01-01T00:00:00Z" \
    "create    client billing: grants sign:payments verify:payments, credentials billing.cred" \
    "create    client verifier: grants verify:* pubkey:*, credentials verifier.cred"
check "--dry-run wrote no credentials file" \
    test ! -e billing.cred -a ! -e verifier.cred

note "---- apply makes them"
expect_exit 0 hk apply a.ini
plan_is \
    "created   key payments: alg ecdsa-p256, sign_overlap 1h, verify_grace 30d, rotate_every 90d, expires never" \
    "created   key tokens: alg ed25519, sign_overlap 10m, verify_grace 7d" \
    "created   key documents: alg rsa-3072, verify_grace 365d, expires 2040-01-01T00:00:00Z" \
    "created   client billing: grants sign:payments verify:payments, credentials billing.cred" \
    "created   client verifier: grants verify:* pubkey:*, credentials verifier.cred"
check "billing.cred is mode 600" test "$(stat -c %a billing.cred)" = 600
check "verifier.cred is mode 600" test "$(stat -c %a verifier.cred)" = 600
hk --json list >"$T/list.json"
check "the keys have the file's algorithms and policies" \
    "$HK_PYTHON" - "$T/list.json" <<'PY'
import json, sys
keys = {k["name"]: k for k in json.load(open(sys.argv[1]))["keys"]}
D = 86400
want = {"payments": ("ecdsa-p256", {"sign_overlap_s": 3600,
                     "verify_grace_s": 30 * D, "rotate_every_s": 90 * D,
                     "expires": None}),
        "tokens": ("ed25519", {"sign_overlap_s": 600,
                   "verify_grace_s": 7 * D}),
        "documents": ("rsa-3072", {"verify_grace_s": 365 * D,
                      "expires": "2040-01-01T00:00:00Z"})}
for name, (alg, policy) in want.items():
    assert keys[name]["alg"] == alg, (name, keys[name]["alg"])
    for f, v in policy.items():
        assert keys[name]["policy"][f] == v, (name, f, keys[name]["policy"])
PY
expect_exit 0 signs_as billing.cred payments
expect_exit 3 signs_as billing.cred tokens
expect_exit 3 signs_as verifier.cred payments
expect_exit 0 "$HSMKEY" --credentials verifier.cred pubkey tokens

note "---- a second apply: nothing to change"
unchanged_by "the second apply" expect_exit 0 hk apply a.ini
check "every line of the second apply is unchanged" all_unchanged
check "it names the 5 items" test "$(printf '%s\n' "$HK_OUT" | wc -l)" = 5
expect_exit 0 hk --json apply --dry-run a.ini
check "--json: 0 changes, 0 errors, 5 unchanged items" \
    "$HK_PYTHON" -c '
import json, sys
d = json.loads(sys.argv[1])
assert d["changes"] == 0 and d["errors"] == 0 and d["dry_run"] is True
assert [i["action"] for i in d["items"]] == ["unchanged"] * 5
' "$HK_OUT"

note "---- an edited file: exactly its changes"
sed -e 's/^verify_grace = 30d$/verify_grace = 60d/' \
    -e 's/^grant = verify:payments$/&\ngrant = pubkey:payments/' \
    "$EXAMPLE" >a.ini
unchanged_by "the edited file's --dry-run" \
    expect_exit 0 hk apply --dry-run a.ini
plan_is \
    "change    key payments: verify_grace 30d -> 60d" \
    "unchanged key tokens" \
    "unchanged key documents" \
    "change    client billing: grants sign:payments verify:payments -> sign:payments verify:payments pubkey:payments" \
    "unchanged client verifier"
expect_exit 0 hk --json apply --dry-run a.ini
check "--json: the change's field, from and to" \
    "$HK_PYTHON" -c '
import json, sys
d = json.loads(sys.argv[1])
assert d["changes"] == 2
assert d["items"][0]["changes"] == [{"field": "verify_grace",
    "from": "30d", "to": "60d"}], d["items"][0]
' "$HK_OUT"
expect_exit 0 hk apply a.ini
check "apply says what it changed" grep -q -x \
    "changed   key payments: verify_grace 30d -> 60d" "$T/out"
expect_exit 0 "$HSMKEY" --credentials billing.cred pubkey payments
unchanged_by "apply after the edit, again" expect_exit 0 hk apply a.ini
check "then every line is unchanged" all_unchanged

note "---- what the file does not name is left alone"
hk --json describe legacy >"$T/legacy.after"
check "the key made by hand is untouched" \
    cmp -s "$T/legacy.before" "$T/legacy.after"
# a grant given by hand stays (grants are only added) ...
expect_exit 0 hk client grant billing --grant sign:payments \
    --grant verify:payments --grant pubkey:payments --grant sign:tokens
expect_exit 0 hk apply a.ini
check "billing's extra grant is not taken away" all_unchanged
expect_exit 0 signs_as billing.cred tokens
# ... unless the file says grants_exact = yes
expect_exit 0 hk client grant verifier --grant 'verify:*' \
    --grant 'pubkey:*' --grant sign:tokens
expect_exit 0 signs_as verifier.cred tokens
expect_exit 0 hk apply --dry-run a.ini
check "grants_exact: the extra grant is to go" grep -q -x -F \
    "change    client verifier: grants verify:* pubkey:* sign:tokens -> verify:* pubkey:*" \
    "$T/out"
expect_exit 0 hk apply a.ini
expect_exit 3 signs_as verifier.cred tokens

note "---- revoke_secrets: the only way apply revokes"
expect_exit 0 hk client rotate billing --out billing2.cred
printf '[client billing]\nrevoke_secrets = 1\n' >revoke.ini
expect_exit 0 hk apply --dry-run revoke.ini
plan_is "change    client billing: revoke secret 1"
expect_exit 0 signs_as billing.cred payments
expect_exit 0 hk apply revoke.ini
expect_exit 3 signs_as billing.cred payments
expect_exit 0 signs_as billing2.cred payments
unchanged_by "revoke.ini again" expect_exit 0 hk apply revoke.ini
check "the revoked secret is not revoked twice" all_unchanged

note "---- bad files: FILE:LINE, exit 2, nothing changed"
printf '[key x]\nalg = ed25519\nalgo = ed25519\n' >bad1.ini
bad_file "an unknown key" bad1.ini 3
printf '[key x]\nalg = ed25519\nverify_grace = 3 days\n' >bad2.ini
bad_file "a bad duration" bad2.ini 3
printf '[key x]\nalg = ed25519\n\n[keys y]\nalg = ed25519\n' >bad3.ini
bad_file "an unknown section" bad3.ini 4
printf '[key x]\n' >bad4.ini
bad_file "an empty section" bad4.ini 1
printf 'alg = ed25519\n' >bad5.ini
bad_file "a value outside a section" bad5.ini 1
# the plan's errors: the whole file is refused, also its good items
sed -e 's/^alg = ed25519$/alg = ecdsa-p384/' \
    -e 's/^verify_grace = 60d$/verify_grace = 61d/' a.ini >bad6.ini
bad_file "an algorithm change" bad6.ini 16
check "the error says algorithms are fixed" grep -q 'fixed' "$T/err"
printf '[key fresh]\nalg = ed25519\n[client newbie]\ngrant = sign:fresh\n' \
    >bad7.ini
bad_file "a new client without credentials" bad7.ini 3
printf '[client newbie]\ngrant = sign:x\ncredentials = billing.cred\n' \
    >bad8.ini
bad_file "an existing credentials file" bad8.ini 3
check "billing.cred was not overwritten" \
    grep -q '^id = billing' billing.cred

# Errors of the file alone are found before any request: with nothing
# listening at --connect, a request would be exit 5.
# parse_error WHAT LINE CONTENT: a file of CONTENT is exit 2, one line
# naming bad.ini:LINE, with no service.
parse_error()
{
	printf '%b' "$3" >bad.ini
	expect_exit 2 "$HSMKEY" --credentials "$T/admin.cred" \
	    --connect "ipc://$T/nothing.sock" apply bad.ini || return 1
	expect_one_line_error
	check "$1: the error names bad.ini:$2" \
	    grep -q -F "bad.ini:$2: " "$T/err"
}
parse_error "a section given twice" 3 \
    '[key x]\nalg = ed25519\n[key x]\nalg = ed25519\n'
parse_error "a value given twice" 3 '[key x]\nalg = ed25519\nalg = ed25519\n'
parse_error "a key without alg" 1 '[key x]\nverify_grace = 1d\n'
parse_error "grants_exact without a grant" 2 \
    '[client c]\ngrants_exact = yes\n'
parse_error "a bad secret number" 2 '[client c]\nrevoke_secrets = 1 x\n'
parse_error "a bad grant" 2 '[client c]\ngrant = launch:x\n'
parse_error "an unknown client key" 3 \
    '[client c]\ngrant = sign:x\ngrnt = sign:y\n'
parse_error "no '='" 2 '[key x]\nalg ed25519\n'
parse_error "an invalid key name" 1 '[key X!]\nalg = ed25519\n'
parse_error "a line too long" 2 \
    "[client c]\ncredentials = /$(printf 'a%.0s' {1..300})\n"
parse_error "a section name inih cuts" 1 \
    "[key $(printf 'a%.0s' {1..60})]\nalg = ed25519\n"
expect_exit 2 hk apply no-such-file.ini
expect_one_line_error
# a continuation line is one more grant; revoke_secrets lines add up
printf '[client billing]\ngrant = sign:payments\n  sign:documents\nrevoke_secrets = 1\nrevoke_secrets = 7 2\n' \
    >cont.ini
expect_exit 0 hk apply --dry-run cont.ini
plan_is "change    client billing: grants sign:payments verify:payments pubkey:payments sign:tokens -> sign:payments verify:payments pubkey:payments sign:tokens sign:documents, revoke secret 2"

note "---- a failure midway stops at its item; a rerun goes on"
cat >mid.ini <<'EOF'
[key mid-a]
alg = ecdsa-p256
[key mid-b]
alg = ecdsa-p256
verify_grace = 1d
[client mid]
grant = sign:mid-*
credentials = mid.cred
EOF
fault_rules 'fail C_GenerateKeyPair CKR_FUNCTION_FAILED after 1 count 1'
expect_exit 5 hk apply mid.ini
expect_one_line_error
check "the error names the item and says to rerun" \
    grep -q "key mid-b: .*again" "$T/err"
plan_is "created   key mid-a: alg ecdsa-p256" \
    "error     key mid-b: mid.ini:3: $(sed -n -e 's/^hsmkey: key mid-b: \(.*\); stopped there.*/\1/p' "$T/err")"
check "the client after it was not made" test ! -e mid.cred
fault_rules '# healed'
expect_exit 0 hk apply mid.ini
plan_is "unchanged key mid-a" \
    "created   key mid-b: alg ecdsa-p256, verify_grace 1d" \
    "created   client mid: grants sign:mid-*, credentials mid.cred"
expect_exit 0 signs_as mid.cred mid-b

note "---- client grant by hand"
expect_exit 0 hk client grant mid --grant sign:mid-a
expect_exit 0 signs_as mid.cred mid-a
expect_exit 3 signs_as mid.cred mid-b
expect_exit 4 hk client grant nobody --grant sign:x
expect_exit 2 hk client grant mid --grant launch:x
expect_one_line_error
expect_exit 2 hk client grant mid
expect_exit 3 "$HSMKEY" --credentials mid.cred client grant mid \
    --grant 'admin:*'
expect_exit 0 hk --json client grant mid --grant sign:mid-a \
    --grant verify:mid-a
check "--json: the client's new grants" "$HK_PYTHON" -c '
import json, sys
d = json.loads(sys.argv[1])
assert d["id"] == "mid" and d["grants"] == ["sign:mid-a", "verify:mid-a"], d
' "$HK_OUT"
has_line()
{
	"$HK_PYTHON" - "$T/audit.log" "$@" <<'PY'
import sys
lines = open(sys.argv[1]).read().splitlines()
sys.exit(0 if any(all(f in l for f in sys.argv[2:]) for l in lines) else 1)
PY
}
check "client grant is audited" has_line '"client":"admin"' \
    '"op":"client-grant"' '"key":"mid"' '"status":"OK"'
check "a denied client grant is audited" has_line '"client":"mid"' \
    '"op":"client-grant"' '"status":"PERMISSION_DENIED"'
check "apply's grant change is audited" has_line '"op":"client-grant"' \
    '"key":"verifier"' '"status":"OK"'

note "---- no secret on apply's stdout or stderr"
# never_printed TEXT: no command of this test printed TEXT.
never_printed()
{
	! grep -q -F -e "$1" "$T/captured.stdout" "$T/captured.stderr"
}
for f in billing.cred billing2.cred verifier.cred mid.cred; do
	s=$(cred_value "$f" secret)
	check "$f holds a secret" test -n "$s"
	check "the secret of $f was never printed" never_printed "$s"
done

cd "$T" || exit 1
hk_stop
hk_finish
