#!/usr/bin/env python3
"""Normal traffic of the evaluation plant: HMI, historian, engineering station, OPC UA HMI.

All clients run in one process for --duration seconds:
  127.0.0.20 HMI (pymodbus): PLC 1 unit 1 FC 3 HR 0-9 and FC 4 IR 0-9 every 1 s, FC 1 coils
             0-15 every 2 s; PLC 2 unit 1 FC 4 IR 0-9 every 1 s and FC 3 HR 0-9 every 2 s,
             unit 2 FC 4 IR 0-9 every 2 s. One TCP connection per PLC.
  127.0.0.21 historian (pymodbus): FC 4 IR 0-5 of every unit every 5 s.
  127.0.0.30 engineering station (pymodbus): a short session every ~70 s (seeded jitter),
             rotating through three kinds: device identification + HR read; level setpoint
             write (FC 6, 58.0-62.0 %) + read-back; temperature setpoint write (FC 16, 44.0-46.0
             degC) on PLC 2 unit 1.
  127.0.0.20 OPC UA HMI (asyncua) on PLC 1's server: browse the plant tree once, subscribe to
             level, temperature and pump speed (1 s), read the setpoint every 10 s.
--seed changes the engineering station's timing and values.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import time

from asyncua import Client
from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException

from opcua_clients import NS_URI, Printer, bind_source, browse_tree

log = logging.getLogger("traffic")


def mb(source: str, target: str) -> AsyncModbusTcpClient:
    host, port = target.split(":")
    return AsyncModbusTcpClient(host, port=int(port), source_address=(source, 0), timeout=1, retries=0)


async def poll(name, period, fn, deadline, offset=0.0, **kw):
    """Run one poll job every `period` seconds until `deadline` (monotonic)."""
    await asyncio.sleep(offset)
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


async def hmi(args, deadline):
    p1, p2 = mb(args.hmi, args.plc1), mb(args.hmi, args.plc2)
    await p1.connect()
    await p2.connect()
    await asyncio.gather(
        poll("hmi plc1 hr0-9", 1.0, p1.read_holding_registers, deadline, address=0, count=10, device_id=1),
        poll("hmi plc1 ir0-9", 1.0, p1.read_input_registers, deadline, 0.2, address=0, count=10, device_id=1),
        poll("hmi plc1 co0-15", 2.0, p1.read_coils, deadline, 0.4, address=0, count=16, device_id=1),
        poll("hmi plc2/1 ir0-9", 1.0, p2.read_input_registers, deadline, 0.1, address=0, count=10, device_id=1),
        poll("hmi plc2/1 hr0-9", 2.0, p2.read_holding_registers, deadline, 0.3, address=0, count=10, device_id=1),
        poll("hmi plc2/2 ir0-9", 2.0, p2.read_input_registers, deadline, 0.5, address=0, count=10, device_id=2),
    )
    p1.close()
    p2.close()


async def historian(args, deadline):
    p1, p2 = mb(args.historian, args.plc1), mb(args.historian, args.plc2)
    await p1.connect()
    await p2.connect()
    await asyncio.gather(
        poll("hist plc1 ir0-5", 5.0, p1.read_input_registers, deadline, 0.7, address=0, count=6, device_id=1),
        poll("hist plc2/1 ir0-5", 5.0, p2.read_input_registers, deadline, 0.8, address=0, count=6, device_id=1),
        poll("hist plc2/2 ir0-5", 5.0, p2.read_input_registers, deadline, 0.9, address=0, count=6, device_id=2),
    )
    p1.close()
    p2.close()


async def eng_session(args, target, steps):
    c = mb(args.eng, target)
    if not await c.connect():
        log.warning("eng: connect to %s failed", target)
        return
    try:
        for what, call in steps:
            try:
                log.info("eng %s %s -> %s", target, what, await call(c))
            except ModbusException as exc:
                log.warning("eng %s %s: %s", target, what, exc)
            await asyncio.sleep(0.15)
    finally:
        c.close()


async def eng(args, deadline):
    rng = random.Random(args.seed)
    kind = rng.randrange(3)
    await asyncio.sleep(rng.uniform(8.0, 20.0))
    while time.monotonic() + 5.0 < deadline:
        if kind == 0:
            steps = [
                ("FC43/14 basic", lambda c: c.read_device_information(read_code=1, object_id=0, device_id=1)),
                ("FC3 hr0-19", lambda c: c.read_holding_registers(0, count=20, device_id=1)),
            ]
            await eng_session(args, args.plc1, steps)
        elif kind == 1:
            sp = rng.randrange(580, 621)
            steps = [
                (f"FC6 level sp {sp}", lambda c: c.write_register(0, sp, device_id=1)),
                ("FC3 check", lambda c: c.read_holding_registers(0, count=4, device_id=1)),
            ]
            await eng_session(args, args.plc1, steps)
        else:
            sp = rng.randrange(440, 461)
            steps = [
                (f"FC16 temp sp {sp}", lambda c: c.write_registers(1, [sp], device_id=1)),
                ("FC3 check", lambda c: c.read_holding_registers(0, count=4, device_id=1)),
            ]
            await eng_session(args, args.plc2, steps)
        kind = (kind + 1) % 3
        await asyncio.sleep(rng.uniform(55.0, 85.0))


async def opcua_hmi(args, deadline):
    client = bind_source(Client(args.opcua, timeout=4), args.hmi)
    client.application_uri = "urn:example:otwatch:hmi"
    client.name = "Plant HMI"
    await client.connect()
    try:
        idx = await client.get_namespace_index(NS_URI)
        plant = await client.nodes.objects.get_child(f"{idx}:Plant")
        nodes: list = []
        await browse_tree(plant, 2, nodes)
        tank = await plant.get_child(f"{idx}:Tank")
        pump = await plant.get_child(f"{idx}:Pump")
        level = await tank.get_child(f"{idx}:Level")
        temp = await tank.get_child(f"{idx}:Temperature")
        setpoint = await tank.get_child(f"{idx}:Setpoint")
        speed = await pump.get_child(f"{idx}:Speed")
        handler = Printer("opcua hmi")
        sub = await client.create_subscription(1000, handler)
        await sub.subscribe_data_change([level, temp, speed])
        # Read the setpoint every 10 s; stop with the Modbus pollers, at the deadline.
        while (left := deadline - time.monotonic()) > 0:
            await asyncio.sleep(min(10.0, left))
            if left > 10.0:
                await setpoint.read_value()
        await sub.delete()
        log.info("opcua hmi: %d data changes", handler.count)
    finally:
        await client.disconnect()


async def run(args):
    deadline = time.monotonic() + args.duration
    await asyncio.gather(hmi(args, deadline), historian(args, deadline), eng(args, deadline), opcua_hmi(args, deadline))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--hmi", default="127.0.0.20")
    p.add_argument("--historian", default="127.0.0.21")
    p.add_argument("--eng", default="127.0.0.30")
    p.add_argument("--plc1", default="127.0.0.10:502")
    p.add_argument("--plc2", default="127.0.0.11:5020")
    p.add_argument("--opcua", default="opc.tcp://127.0.0.10:4840/plant/")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--duration", type=float, default=360.0)
    args = p.parse_args()
    for a in (args.hmi, args.historian, args.eng, args.plc1, args.plc2, args.opcua.split("//")[1]):
        if not a.startswith("127."):
            raise SystemExit("loopback addresses only")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("pymodbus").setLevel(logging.ERROR)
    logging.getLogger("asyncua").setLevel(logging.WARNING)
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
