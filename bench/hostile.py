#!/usr/bin/env python3
"""Hostile-client robustness run (issue 12), driven by bench/hostile.sh.

For each scenario and each server in turn: a hostile mix runs for DURATION seconds while
a probe sends a normal `GET /` on a fresh connection every 50 ms; then the attackers go
away and 20 more probes are sent one after the other. Prints, per scenario and server,
the probe latency (median and worst) and the failed probes (not 200, or no answer in 5 s)
during and after the attack; for servers with an admin address, the gauges afterwards.

Usage: hostile.py NAME=HOST:PORT[,ADMIN_HOST:PORT] ...   (standard library only)
"""

import asyncio
import os
import resource
import statistics
import struct
import sys
import time

DURATION = float(os.environ.get("DURATION", "5"))
SCENARIOS = os.environ.get(
    "SCENARIOS",
    "idle slow-headers slow-body body-then-nothing cancel-queued cancel-mid-body h2-reset",
).split()
PROBE_TIMEOUT = 5.0


async def probe_once(host, port):
    """One normal request on a new connection: (seconds, ok)."""
    start = time.monotonic()
    try:
        r, w = await asyncio.wait_for(asyncio.open_connection(host, port), PROBE_TIMEOUT)
        try:
            w.write(b"GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
            data = await asyncio.wait_for(r.read(), PROBE_TIMEOUT)
        finally:
            w.close()
        ok = data.startswith(b"HTTP/1.1 200")
    except (OSError, asyncio.TimeoutError):
        ok = False
    return time.monotonic() - start, ok


async def probe_loop(host, port, stop, results):
    tasks = []
    while not stop.is_set():
        tasks.append(asyncio.ensure_future(probe_once(host, port)))
        await asyncio.sleep(0.05)
    results.extend(await asyncio.gather(*tasks))


async def hold(coro_factory, n, stop):
    """Runs n copies of an attacker until stop, then cancels them (closing sockets)."""
    tasks = [asyncio.ensure_future(coro_factory(i)) for i in range(n)]
    await stop.wait()
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def connect(host, port):
    while True:
        try:
            return await asyncio.open_connection(host, port)
        except OSError:
            await asyncio.sleep(0.05)


def attacker(kind, host, port):
    async def idle(_):
        r, w = await connect(host, port)
        try:
            await r.read()  # until the server closes
            await asyncio.sleep(3600)
        finally:
            w.close()

    async def slow_headers(_):
        while True:
            r, w = await connect(host, port)
            try:
                w.write(b"GET / HTTP/1.1\r\nHost: bench\r\n")
                while True:
                    w.write(b"x")
                    await w.drain()
                    await asyncio.sleep(1)
            except OSError:
                pass
            finally:
                w.close()

    async def slow_body(_):
        while True:
            r, w = await connect(host, port)
            try:
                w.write(b"POST /echo HTTP/1.1\r\nHost: bench\r\nContent-Length: 1000\r\n\r\n")
                for _ in range(1000):
                    w.write(b"x")
                    await w.drain()
                    await asyncio.sleep(1)
            except OSError:
                pass
            finally:
                w.close()

    async def body_then_nothing(_):
        while True:
            r, w = await connect(host, port)
            try:
                w.write(b"POST /echo HTTP/1.1\r\nHost: bench\r\nContent-Length: 1000\r\n\r\n")
                await r.read()  # until the server gives up on us
            except OSError:
                pass
            finally:
                w.close()

    async def cancel_queued(_):
        while True:
            r, w = await connect(host, port)
            w.write(b"GET /sleep HTTP/1.1\r\nHost: bench\r\n\r\n")
            await asyncio.sleep(0.05)
            w.close()

    async def cancel_mid_body(_):
        while True:
            r, w = await connect(host, port)
            w.write(b"POST /echo HTTP/1.1\r\nHost: bench\r\nContent-Length: 1000\r\n\r\n" + b"x" * 500)
            await asyncio.sleep(0.02)
            w.close()

    async def h2_reset(_):
        def frame(kind, flags, stream, payload):
            return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", stream) + payload

        # :method GET, :scheme http, :path /sleep, :authority bench (HPACK, no Huffman)
        block = b"\x82\x86\x04\x06/sleep\x01\x05bench"
        while True:
            r, w = await connect(host, port)
            drain = asyncio.ensure_future(r.read())
            try:
                w.write(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + frame(4, 0, 0, b""))
                stream = 1
                while not drain.done():
                    w.write(frame(1, 0x5, stream, block))
                    await w.drain()
                    await asyncio.sleep(0.01)
                    w.write(frame(3, 0, stream, struct.pack(">I", 8)))  # RST_STREAM CANCEL
                    stream += 2
            except OSError:
                pass
            finally:
                drain.cancel()
                w.close()

    return {
        "idle": (idle, 3000),
        "slow-headers": (slow_headers, 1000),
        "slow-body": (slow_body, 1000),
        "body-then-nothing": (body_then_nothing, 1000),
        "cancel-queued": (cancel_queued, 300),
        "cancel-mid-body": (cancel_mid_body, 100),
        "h2-reset": (h2_reset, 20),
    }[kind]


async def metrics(admin):
    host, port = admin.split(":")
    r, w = await asyncio.open_connection(host, int(port))
    w.write(b"GET /metrics HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n")
    text = (await r.read()).decode()
    w.close()
    out = {}
    for line in text.splitlines():
        for name in ("requests_in_flight", "requests_queued", "connections"):
            if line.startswith("luapool_http_" + name + "{"):
                out[name] = out.get(name, 0) + float(line.split()[-1])
    return out


def summary(results):
    if not results:
        return "-"
    times = sorted(t for t, _ in results)
    failed = sum(1 for _, ok in results if not ok)
    return "%.1f / %.0f ms, %d/%d failed" % (
        statistics.median(times) * 1000,
        times[-1] * 1000,
        failed,
        len(results),
    )


async def run(kind, name, addr, admin):
    host, port = addr.split(":")
    port = int(port)
    factory, n = attacker(kind, host, port)
    stop = asyncio.Event()
    during = []
    attack = asyncio.ensure_future(hold(factory, n, stop))
    await asyncio.sleep(min(1.0, DURATION / 4))  # let the attackers connect
    probes = asyncio.ensure_future(probe_loop(host, port, stop, during))
    await asyncio.sleep(DURATION)
    stop.set()
    await attack
    await probes
    after = [await probe_once(host, port) for _ in range(20)]
    gauges = ""
    if admin:
        deadline = time.monotonic() + 5
        while True:
            m = await metrics(admin)
            # the probes' own connections may still be closing
            if (m.get("requests_in_flight", 0) == 0 and m.get("requests_queued", 0) == 0
                    and m.get("connections", 0) == 0) or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.1)
        gauges = "in_flight %d, queued %d, connections %d" % (
            m.get("requests_in_flight", 0), m.get("requests_queued", 0), m.get("connections", 0))
    return summary(during), summary(after), gauges


async def main(targets):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    print("DURATION=%gs per scenario; probe: GET / on a new connection every 50 ms during, "
          "20 in a row after; figures: median / worst latency, failed probes" % DURATION)
    print()
    print("| scenario | server | during the attack | right after it | gauges after |")
    print("|---|---|---|---|---|")
    for kind in SCENARIOS:
        for name, addr, admin in targets:
            if kind == "h2-reset" and not admin:
                print("| %s | %s | n/a (no h2c on this server) | | |" % (kind, name), flush=True)
                continue
            during, after, gauges = await run(kind, name, addr, admin)
            print("| %s | %s | %s | %s | %s |" % (kind, name, during, after, gauges), flush=True)
            await asyncio.sleep(0.5)


if __name__ == "__main__":
    targets = []
    for arg in sys.argv[1:]:
        name, rest = arg.split("=", 1)
        addr, _, admin = rest.partition(",")
        targets.append((name, addr, admin or None))
    asyncio.run(main(targets))
