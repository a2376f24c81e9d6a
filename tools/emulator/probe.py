#!/usr/bin/python3
"""Link probe of tools/emulate's self-check: TCP round trips and bulk transfers between emulated
nodes. tools/emulate runs it inside the nodes' network namespaces, in a cgroup of its own (not
the nodes' CPU cgroups: the check measures the links, not the nodes).

  probe.py server ADDR PORT
      serves connections until killed
  probe.py client [--pings K] [--bulk BYTES] ADDR:PORT...
      one JSON line per target: rtt_s (median of K 1-byte round trips), rtt_min_s, and with
      --bulk the rate of a BYTES transfer to the target, measured at the receiver over the
      bytes after the first quarter (after TCP's slow start), bandwidth_Bps

Round trips are TCP_NODELAY ping-pongs of one byte, so both directions of the pair are in them.
"""
import json
import socket
import statistics
import struct
import sys
import threading
import time


def recv_exact(s, n):
    out = bytearray()
    while len(out) < n:
        b = s.recv(n - len(out))
        if not b:
            raise EOFError("connection closed")
        out += b
    return bytes(out)


def serve_one(s):
    try:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.settimeout(120)
        while True:
            b = s.recv(1)
            if not b:
                return
            if b == b"B":
                break
            s.sendall(b)
        (total,) = struct.unpack("!Q", recv_exact(s, 8))
        buf = bytearray(1 << 20)
        got, t_quarter, b_quarter = 0, None, 0
        while got < total:
            n = s.recv_into(buf, min(len(buf), total - got))
            if n == 0:
                return
            got += n
            if t_quarter is None and got >= total // 4:
                t_quarter, b_quarter = time.monotonic(), got
        t_end = time.monotonic()
        s.sendall(struct.pack("!ddQ", t_quarter, t_end, got - b_quarter))
    except (OSError, EOFError):
        pass
    finally:
        s.close()


def server(addr, port):
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((addr, port))
    ls.listen(64)
    while True:
        s, _ = ls.accept()
        threading.Thread(target=serve_one, args=(s,), daemon=True).start()


def probe(addr, port, pings, nbytes):
    deadline = time.monotonic() + 20
    while True:
        try:
            s = socket.create_connection((addr, port), timeout=10)
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.settimeout(120)
    out = {"target": f"{addr}:{port}"}
    rtts = []
    for _ in range(3):  # round trips first: the connection's start is not in the figures
        s.sendall(b"p")
        recv_exact(s, 1)
    for _ in range(pings):
        t0 = time.monotonic()
        s.sendall(b"p")
        recv_exact(s, 1)
        rtts.append(time.monotonic() - t0)
    if rtts:
        out["rtt_s"] = statistics.median(rtts)
        out["rtt_min_s"] = min(rtts)
    if nbytes:
        s.sendall(b"B" + struct.pack("!Q", nbytes))
        chunk = b"\0" * (1 << 20)
        left = nbytes
        while left > 0:
            n = min(left, len(chunk))
            s.sendall(chunk[:n])
            left -= n
        t_quarter, t_end, measured = struct.unpack("!ddQ", recv_exact(s, 24))
        out["bandwidth_Bps"] = measured / (t_end - t_quarter) if t_end > t_quarter else float("inf")
        out["bytes"] = nbytes
    s.close()
    return out


def main():
    a = sys.argv[1:]
    if len(a) == 3 and a[0] == "server":
        server(a[1], int(a[2]))
        return
    if not a or a[0] != "client":
        sys.exit(__doc__)
    pings, nbytes, targets = 10, 0, []
    i = 1
    while i < len(a):
        if a[i] == "--pings":
            pings = int(a[i + 1])
            i += 2
        elif a[i] == "--bulk":
            nbytes = int(a[i + 1])
            i += 2
        else:
            targets.append(a[i])
            i += 1
    for t in targets:
        host, port = t.rsplit(":", 1)
        print(json.dumps(probe(host, int(port), pings, nbytes)), flush=True)


if __name__ == "__main__":
    main()
