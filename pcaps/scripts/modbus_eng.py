#!/usr/bin/env python3
"""Engineering station: occasional pymodbus sessions that identify and tune the PLCs.

Each action opens its own TCP connection (as engineering tools do), performs a few
requests, and closes it. Times are seconds after start. All writes stay in the
normal operating range; one request deliberately reads an unmapped address to get an
exception response (code 2, illegal data address).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import time

from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException

log = logging.getLogger("eng")


def endpoint(s):
    host, port = s.split(":")
    return host, int(port)


async def session(src, target, steps):
    host, port = endpoint(target)
    c = AsyncModbusTcpClient(host, port=port, source_address=(src, 0), timeout=1, retries=0)
    if not await c.connect():
        log.warning("connect to %s failed", target)
        return
    try:
        for what, fn, kw in steps:
            try:
                rsp = await fn(c, **kw)
                log.info("%s %s -> %s", target, what, rsp)
            except ModbusException as exc:
                log.warning("%s %s: %s", target, what, exc)
            await asyncio.sleep(0.15)
    finally:
        c.close()


def devid(c, **kw):
    return c.read_device_information(**kw)


async def run(args):
    plc1, plc2 = args.plc1, args.plc2
    R = AsyncModbusTcpClient
    plan = [
        (3.0, plc1, [
            ("FC43/14 basic", R.read_device_information, dict(read_code=1, object_id=0, device_id=1)),
            ("FC43/14 regular", R.read_device_information, dict(read_code=2, object_id=0, device_id=1)),
            ("FC3 hr0-19", R.read_holding_registers, dict(address=0, count=20, device_id=1)),
        ]),
        (5.0, plc2, [
            ("FC43/14 basic", R.read_device_information, dict(read_code=1, object_id=0, device_id=1)),
            ("FC43/14 regular", R.read_device_information, dict(read_code=2, object_id=0, device_id=2)),
        ]),
        (9.0, plc1, [
            ("FC6 level sp 65.0%", R.write_register, dict(address=0, value=650, device_id=1)),
            ("FC3 check", R.read_holding_registers, dict(address=0, count=4, device_id=1)),
        ]),
        (13.0, plc1, [
            ("FC16 temp sp 47.0C, pump 1500rpm", R.write_registers, dict(address=1, values=[470, 1500], device_id=1)),
        ]),
        (17.0, plc2, [
            ("FC23 read hr0-9 write hr0=58.0%", R.readwrite_registers,
             dict(read_address=0, read_count=10, write_address=0, values=[580], device_id=1)),
        ]),
        (21.0, plc1, [
            ("FC3 hr100-109 (unmapped, expect exception 2)", R.read_holding_registers,
             dict(address=100, count=10, device_id=1)),
            ("FC3 hr10-19 spare", R.read_holding_registers, dict(address=10, count=10, device_id=1)),
        ]),
        (24.0, plc1, [
            ("FC5 alarm acknowledge", R.write_coil, dict(address=3, value=True, device_id=1)),
            ("FC5 alarm acknowledge release", R.write_coil, dict(address=3, value=False, device_id=1)),
        ]),
        (27.0, plc2, [
            ("FC6 unit 2 temp sp 46.0C", R.write_register, dict(address=1, value=460, device_id=2)),
            ("FC16 unit 2 alarm limits", R.write_registers, dict(address=4, values=[920, 80], device_id=2)),
        ]),
        (31.0, plc1, [
            ("FC16 level sp back to 60.0%, temp 45.0C", R.write_registers, dict(address=0, values=[600, 450], device_id=1)),
            ("FC3 check", R.read_holding_registers, dict(address=0, count=10, device_id=1)),
        ]),
    ]
    t0 = time.monotonic()
    for at, target, steps in plan:
        await asyncio.sleep(max(0.0, t0 + at - time.monotonic()))
        await session(args.source, target, steps)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--source", default="127.0.0.30")
    p.add_argument("--plc1", default="127.0.0.10:502")
    p.add_argument("--plc2", default="127.0.0.11:5020")
    args = p.parse_args()
    for a in (args.source, args.plc1, args.plc2):
        if not a.startswith("127."):
            raise SystemExit("loopback addresses only")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("pymodbus").setLevel(logging.ERROR)
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
