#!/usr/bin/env python3
"""syscall_check.py UNIT GROUPS STRACE: every system call in the strace -f
log STRACE is allowed by the SystemCallFilter= lines of the unit file UNIT,
with the groups as `systemd-analyze syscall-filter` prints them (file
GROUPS), applied in order as systemd does: the first line is an allow list
(or, with ~, a deny list), later lines add (no ~) or remove (~) names.

Prints the calls used, and each one the filter would refuse; exits 1 if
there is one.  Also prints each /proc file the service opened outside its
own /proc/PID (ProcSubset=pid hides them) and exits 1 for those too.
"""
import re
import sys


def read_groups(path):
    groups, cur = {}, None
    for line in open(path):
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        if not line[0].isspace() and s.startswith("@"):
            cur = groups.setdefault(s, [])
        elif cur is not None:
            cur.append(s)
    return groups


def expand(names, groups, seen=None):
    seen = set() if seen is None else seen
    out = set()
    for n in names:
        if n.startswith("@"):
            if n in seen:
                continue
            seen.add(n)
            if n not in groups:
                sys.exit("unknown group %s" % n)
            out |= expand(groups[n], groups, seen)
        else:
            out.add(n)
    return out


def allowed_set(unit, groups):
    allow, deny_mode = None, False
    every = expand(groups.keys(), groups)
    for line in open(unit):
        m = re.match(r"^SystemCallFilter=(.*)$", line.strip())
        if not m:
            continue
        v = m.group(1).strip()
        neg = v.startswith("~")
        names = expand(v.lstrip("~").split(), groups)
        if allow is None:
            deny_mode = neg
            allow = (every - names) if neg else set(names)
        elif neg:
            allow -= names
        else:
            allow |= names
    if allow is None:
        sys.exit("no SystemCallFilter= in %s" % unit)
    return allow, deny_mode


def main():
    unit, groups_file, log = sys.argv[1:4]
    groups = read_groups(groups_file)
    allow, _ = allowed_set(unit, groups)
    used, procs = set(), set()
    call = re.compile(r"^\d+\s+(?:<\.\.\. )?([a-z_0-9]+)[( ]")
    proc = re.compile(r'"(/proc/[^"]*)"')
    for line in open(log, errors="replace"):
        m = call.match(line)
        if m and m.group(1) != "resumed":
            used.add(m.group(1))
        for p in proc.findall(line):
            if not re.match(r"^/proc/(self|thread-self|\d+)(/|$)", p):
                procs.add(p)
    bad = sorted(used - allow)
    print("system calls used: %d: %s" % (len(used), " ".join(sorted(used))))
    for b in bad:
        print("REFUSED by the filter: %s" % b)
    for p in sorted(procs):
        print("OUTSIDE ProcSubset=pid: %s" % p)
    sys.exit(1 if bad or procs else 0)


if __name__ == "__main__":
    main()
