#!/usr/bin/env python3
"""HMI/SCADA poller: pymodbus clients that poll the simulated PLCs at fixed periods.

Profiles: "plant" (operator HMI: holding registers every 200 ms, input registers every
500 ms, coils and discrete inputs every 1-2 s), "historian" (input registers of every
unit once a second), "slow" (light background polling during the attack capture).

Each target is "host:port"; every poll job runs at its own period on one TCP connection
per PLC, like a SCADA driver. Runs for --duration seconds, then closes its connections.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import time

from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException

log = logging.getLogger("hmi")


async def poll(client, name, period, fn, deadline, **kw):
    """Run one poll job every `period` seconds until `deadline` (monotonic)."""
    nxt = time.monotonic()
    n = 0
    while True:
        nxt += period
        if nxt > deadline:
            break
        try:
            rsp = await fn(**kw)
            if rsp.isError():
                log.warning("%s: exception %s", name, rsp)
            n += 1
        except ModbusException as exc:
            log.warning("%s: %s", name, exc)
        await asyncio.sleep(max(0.0, nxt - time.monotonic()))
    log.info("%s: %d polls", name, n)


async def run(args):
    deadline = time.monotonic() + args.duration
    p1 = AsyncModbusTcpClient(
        args.plc1.split(":")[0], port=int(args.plc1.split(":")[1]),
        source_address=(args.source, 0), timeout=1, retries=0,
    )
    p2 = AsyncModbusTcpClient(
        args.plc2.split(":")[0], port=int(args.plc2.split(":")[1]),
        source_address=(args.source, 0), timeout=1, retries=0,
    )
    await p1.connect()
    await asyncio.sleep(0.05)
    await p2.connect()
    if args.profile == "historian":
        jobs = [
            poll(p1, "plc1 ir0-5", 1.0, p1.read_input_registers, deadline, address=0, count=6, device_id=1),
            poll(p2, "plc2/1 ir0-5", 1.0, p2.read_input_registers, deadline, address=0, count=6, device_id=1),
            poll(p2, "plc2/2 ir0-5", 1.0, p2.read_input_registers, deadline, address=0, count=6, device_id=2),
        ]
        await asyncio.gather(*jobs)
        p1.close()
        p2.close()
        return
    if args.profile == "slow":
        jobs = [
            poll(p1, "plc1 hr0-9", 1.0, p1.read_holding_registers, deadline, address=0, count=10, device_id=1),
            poll(p2, "plc2/1 ir0-9", 2.0, p2.read_input_registers, deadline, address=0, count=10, device_id=1),
        ]
        await asyncio.gather(*jobs)
        p1.close()
        p2.close()
        return
    jobs = [
        # PLC 1, unit 1: fast operator display.
        poll(p1, "plc1 hr0-9", 0.2, p1.read_holding_registers, deadline, address=0, count=10, device_id=1),
        poll(p1, "plc1 ir0-9", 0.5, p1.read_input_registers, deadline, address=0, count=10, device_id=1),
        poll(p1, "plc1 co0-15", 1.0, p1.read_coils, deadline, address=0, count=16, device_id=1),
        poll(p1, "plc1 di0-15", 1.0, p1.read_discrete_inputs, deadline, address=0, count=16, device_id=1),
        # PLC 2 (gateway on a non-standard port), units 1 and 2.
        poll(p2, "plc2/1 ir0-9", 0.5, p2.read_input_registers, deadline, address=0, count=10, device_id=1),
        poll(p2, "plc2/2 ir0-9", 0.5, p2.read_input_registers, deadline, address=0, count=10, device_id=2),
        poll(p2, "plc2/1 hr0-9", 0.2, p2.read_holding_registers, deadline, address=0, count=10, device_id=1),
        poll(p2, "plc2/2 hr0-9", 1.0, p2.read_holding_registers, deadline, address=0, count=10, device_id=2),
        poll(p2, "plc2/1 co0-7", 1.0, p2.read_coils, deadline, address=0, count=8, device_id=1),
        poll(p2, "plc2/1 di0-7", 2.0, p2.read_discrete_inputs, deadline, address=0, count=8, device_id=1),
    ]
    await asyncio.gather(*jobs)
    p1.close()
    p2.close()


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--source", default="127.0.0.20")
    p.add_argument("--plc1", default="127.0.0.10:502")
    p.add_argument("--plc2", default="127.0.0.11:5020")
    p.add_argument("--profile", choices=["plant", "historian", "slow"], default="plant")
    p.add_argument("--duration", type=float, default=35.0)
    args = p.parse_args()
    for a in (args.source, args.plc1, args.plc2):
        if not a.startswith("127."):
            raise SystemExit("loopback addresses only")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("pymodbus").setLevel(logging.ERROR)
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
