#!/usr/bin/env bash
#
# test_crash.sh: crash consistency of create and rotate.  Each crash point
# is reached from outside, on the shipped hsmkeyd: the fault-injecting
# module (tests/faultp11) SIGKILLs the daemon at the Nth call of a PKCS#11
# function.  The calls of one create (and of one rotate: the same after its
# first record write, which replaces the old record) are, in order:
#   C_CreateObject      the intent record
#   (C_DestroyObject    rotate: the old record)
#   C_GenerateKeyPair   the version's key pair
#   C_DestroyObject     the public key's session object, once read
#   C_CreateObject      the commit record
#   C_DestroyObject     the intent record
#   C_SetAttributeValue rotate: CKA_SIGN false on the retired version
#   C_CopyObject        the session copy of the new primary
# so the points are (the token is checked with pkcs11-tool before the
# restart, to see that the daemon died where the point says):
#   create:intent, rotate:intent   at C_GenerateKeyPair: the intent only
#   create:keygen, rotate:keygen   at the 2nd C_CreateObject: the key pair
#                                  made, not committed
#   create:commit, rotate:record   at the intent's C_DestroyObject: the
#                                  commit written beside the intent
#   rotate:commit                  at C_SetAttributeValue: committed, the
#                                  old version still has CKA_SIGN
# After a restart the service must have repaired or rolled back:
#   *:intent, *:keygen  the commit was not reached: the key (create) or v2
#                       (rotate) was not made (a design that rolls forward
#                       instead must leave it complete);
#   the others          the commit was reached: complete, primary.
# In every case describe lists no half-made version, signing works (and
# openssl verifies the signature with the exported public key), the next
# rotation numbers on, and the token holds exactly what the service lists
# (no object of a rolled-back version, one record each).  Last, a client
# revoke killed between its records: the revoked secret's object goes.

. "$(dirname "$0")/lib.sh"

hk_faultp11
hk_setup
MSG=$T/msg
printf 'crash me\n' >"$MSG"
fault_rules '# no rules'

# The points: NAME RULE RECORDS OBJECTS COMMITTED: the kill rule, the
# records of the key and the objects of the new version in the token when
# the daemon is dead, and whether the commit was reached.
POINTS=(
	'create:intent|kill C_GenerateKeyPair|1|0|no'
	'create:keygen|kill C_CreateObject after 1|1|1|no'
	'create:commit|kill C_DestroyObject after 1|2|1|yes'
	'rotate:intent|kill C_GenerateKeyPair|1|0|no'
	'rotate:keygen|kill C_CreateObject after 1|1|1|no'
	'rotate:record|kill C_DestroyObject after 2|2|1|yes'
	'rotate:commit|kill C_SetAttributeValue|1|1|yes'
)

# crash_run POINT RULE CMD...: with the kill rule in place, runs CMD (which
# must fail: the service dies under it), asserts that the daemon died of
# SIGKILL at the rule's function, and clears the rules.
crash_run()
{
	local point=$1 rule=$2 pid=$HK_PID fn
	shift 2
	read -r _ fn _ <<<"$rule"
	rm -f "$T/faultp11.log"
	fault_rules "$rule"
	expect_fail "$@"
	expect_killed "$pid" "$point"
	check "$point: the module killed it ($rule)" \
	    grep -q "^kill $fn call" "$T/faultp11.log"
	fault_rules '# no rules'
}

# dead_token POINT NAME V RECORDS OBJECTS: while the daemon is dead, the
# token holds RECORDS records of NAME and OBJECTS objects of its version V.
dead_token()
{
	local point=$1 name=$2 v=$3
	check "$point: $4 record(s) of $name in the token" \
	    test "$(token_label_count "hsmkey-key:$name")" -eq "$4"
	check "$point: $5 object(s) of $name v$v in the token" \
	    test "$(token_label_count "hsmkey:$name:v$v")" -eq "$5"
}

# check_complete NAME V: version V of NAME has its key pair and its public
# key exports ($T/NAME.vV.pem).
check_complete()
{
	local name=$1 v=$2
	check "$name v$v: its private key in the token" \
	    test "$(token_label_count "hsmkey:$name:v$v")" -eq 1
	expect_exit 0 hk pubkey "$name" --version "$v" --out "$T/$name.v$v.pem"
}

# signs_as NAME V: the primary signs as version V; the service and openssl
# verify it.
signs_as()
{
	check_complete "$1" "$2"
	sign_works "$1" "$2" "$MSG" "$T/$1.v$2.pem"
}

hk_start || exit 1
for p in "${POINTS[@]}"; do
	IFS='|' read -r point rule records objects committed <<<"$p"
	name=${point%%:*}-${point#*:}
	note "---- $point ($rule)"
	if [ "${point%%:*}" = create ]; then
		crash_run "$point" "$rule" hk --timeout 1 create "$name"
		dead_token "$point" "$name" 1 "$records" "$objects"
		hk_start || exit 1
		hk describe "$name" >"$T/out" 2>"$T/err"
		rc=$?
		if [ "$committed" = no ] && [ "$rc" -eq 4 ]; then
			ok "$point: $name rolled back (describe: not found)"
			check "$point: no key objects left for $name" \
			    test -z "$(token_labels_with_prefix "hsmkey:$name:")"
			check "$point: no record left for $name" \
			    test "$(token_label_count "hsmkey-key:$name")" -eq 0
			expect_exit 0 hk create "$name"
		elif [ "$rc" -eq 0 ]; then
			ok "$point: $name complete (describe works)"
		else
			fail "$point: describe $name exit $rc: $(cat "$T/err")"
		fi
		expect_versions "$name" "primary 1" "v1 active"
		signs_as "$name" 1
		v=1
	else
		expect_exit 0 hk create "$name"
		crash_run "$point" "$rule" hk --timeout 1 rotate "$name" \
		    --expect 1
		dead_token "$point" "$name" 2 "$records" "$objects"
		hk_start || exit 1
		if [ "$committed" = yes ] ||
		    grep -q '^v2 ' <<<"$(key_versions "$name")"; then
			[ "$committed" = yes ] ||
			    note "$point: v2 was rolled forward"
			expect_versions "$name" "primary 2" "v1 verify-only" \
			    "v2 active"
			signs_as "$name" 2
			check "$point: v1 may not sign in the token" \
			    test "$(token_objects | grep -A2 "label: *hsmkey:$name:v1\$" |
				sed -n -e 's/^ *Usage: *//p')" = none
			v=2
		else
			expect_versions "$name" "primary 1" "v1 active"
			check "$point: no objects of the rolled-back v2" \
			    test "$(token_label_count "hsmkey:$name:v2")" -eq 0
			signs_as "$name" 1
			v=1
		fi
		check_complete "$name" 1
	fi
	expect_exit 0 hk health
	token_consistent "$point"
	# The next rotation after the repair works and numbers on.
	expect_exit 0 hk rotate "$name" --expect "$v"
	signs_as "$name" $((v + 1))
	token_consistent "$point, rotated again"
done

# A revoke writes the client's new record (without the secret), removes
# the old record, then the secret's object.  Killed at the old record's
# C_DestroyObject, the token holds both records and both secrets: the
# start keeps the newer record and removes the revoked secret's object,
# whichever record it reads first.
note "---- client revoke killed between its two records"
expect_exit 0 hk client add cr --grant 'sign:*' --out "$T/cr.1"
expect_exit 0 hk client rotate cr --out "$T/cr.2"
crash_run client-revoke:record 'kill C_DestroyObject' \
    hk --timeout 1 client revoke cr --secret 1
check "client-revoke:record: two records of cr in the token" \
    test "$(token_label_count hsmkey-client:cr)" -eq 2
hk_start || exit 1
expect_exit 3 "$HSMKEY" --credentials "$T/cr.1" sign rotate-intent --in "$MSG"
expect_exit 0 "$HSMKEY" --credentials "$T/cr.2" sign rotate-intent --in "$MSG"
check "client-revoke:record: the revoked secret's object is gone" \
    test "$(token_label_count hsmkey-secret:cr:1)" -eq 0
token_consistent client-revoke:record

note "---- a kill rule that is never reached does nothing"
fault_rules 'kill C_GenerateKeyPair'
expect_exit 0 hk health
expect_exit 0 hk sign rotate-intent --in "$MSG"
expect_exit 0 hk disable rotate-intent --version 1
expect_exit 0 hk list
check "hsmkeyd is still running" kill -0 "$HK_PID"
fault_rules '# no rules'
hk_stop

hk_finish
