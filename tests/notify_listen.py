#!/usr/bin/env python3
"""notify_listen.py SOCKET OUT IPC SECONDS: plays systemd's side of
sd_notify(3) for tests/test_harden.sh.

Binds a unix datagram socket at SOCKET (what NOTIFY_SOCKET names) and
writes one line to OUT for each state the service sends ("READY=1",
"STOPPING=1", ...).  The moment READY=1 arrives it tries a stream
connection to the path IPC (the service's ipc:// listener) and writes
"connect ok" or "connect failed: ERROR" right after it: readiness must
mean the listener is bound.  Ends after STOPPING=1, or after SECONDS.
"""
import os
import socket
import sys
import time


def try_connect(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(path)
        return "connect ok"
    except OSError as e:
        return "connect failed: %s" % e.strerror
    finally:
        s.close()


def main():
    path, out, ipc, secs = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    end = time.monotonic() + secs
    with open(out, "a", buffering=1) as f:
        f.write("listening\n")
        while time.monotonic() < end:
            sock.settimeout(max(0.01, end - time.monotonic()))
            try:
                msg = sock.recv(4096).decode("utf-8", "replace")
            except socket.timeout:
                break
            states = [s for s in msg.split("\n") if s]
            for s in states:
                f.write(s + "\n")
            if "READY=1" in states:
                f.write(try_connect(ipc) + "\n")
            if "STOPPING=1" in states:
                break
    sock.close()
    os.unlink(path)


if __name__ == "__main__":
    main()
