#!/usr/bin/env python3
"""Traffic for the rule-pack test captures: one short step per run, each firing one rule.

Usage: rules_traffic.py STEP [--host options]. make_rules.sh captures each step on its own.
Hosts (defaults; all loopback):
  127.0.0.100 PLC (modbus_plc.py, unit 1; answers FC 90 and other unknown codes with exception 1)
  127.0.0.101 gateway (modbus_plc.py, units 1 and 2; exception 11 for any other unit)
  127.0.0.102 gateway (modbus_plc.py --silent-unknown-units: no answer for other units)
  127.0.0.110 OPC UA server that should require a login (anonymous and user name accepted)
  127.0.0.111 OPC UA server whose security mode None nobody has accepted
  127.0.0.112 OPC UA server (mode None accepted, anonymous allowed) for the write/call steps
  127.0.0.120 engineering station   127.0.0.121 HMI   127.0.0.130 unknown host
Steps (request first, answers from the real pymodbus / asyncua servers):
  listen_only       130 -> PLC: FC 8 sub 4 force listen-only mode
  restart_comm      130 -> PLC: FC 8 sub 1 restart communications (data 0x0000)
  clear_counters    130 -> PLC: FC 8 sub 10 clear counters, FC 8 sub 20 clear overrun counter
  umas_download     120 -> PLC: UMAS take reservation, initialize download, 2 download blocks,
                    end download, release reservation
  umas_stop_start   120 -> PLC: UMAS stop PLC, 1 s later start PLC
  write_foreign     120 FC 6, 121 FC 16 (allowed), then 130 FC 6 and FC 16 to the PLC
  program_foreign   130 -> PLC: UMAS take reservation, initialize upload, upload block
  identify_foreign  120 FC 43/14 (allowed), then 130 FC 43/14 and FC 17 to the PLC
  fc_scan           130 -> PLC: every function code 1..127 except writes, 8, 17, 43 and 90
  address_scan      130 -> PLC: FC 3 HR 0..199 and FC 4 IR 0..99 in blocks of 10
  unit_scan         130 -> gateway 101: FC 3 HR 0 to units 1..30
  unit_scan_silent  130 -> gateway 102: FC 3 HR 0 to units 1..30 (0.2 s timeout each)
  opcua_insecure    121 -> 111: GetEndpoints and an anonymous session with reads (mode None),
                    121 -> 110: a user-name session with reads
  opcua_anonymous   120 -> 110 user-name session, 121 -> 110 anonymous session, reads
  opcua_write       121 -> 112 writes the tank setpoint (allowed), 130 -> 112 writes it
  opcua_call        121 -> 112 calls Pump.ResetCounter (allowed), 130 -> 112 calls it
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import struct

from asyncua import Client, ua
from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException

from modbus_attack import RawPDU, scan_payload
from opcua_clients import NS_URI, bind_source, browse_tree

log = logging.getLogger("rules")

# UMAS codes (the byte after the pairing key of FC 90).
TAKE_RESERVATION, RELEASE_RESERVATION = 0x10, 0x11
INIT_UPLOAD, UPLOAD_BLOCK = 0x30, 0x31
INIT_DOWNLOAD, DOWNLOAD_BLOCK, END_DOWNLOAD = 0x33, 0x34, 0x35
START_PLC, STOP_PLC = 0x40, 0x41


def umas(code: int, data: bytes = b"", pair: int = 0) -> RawPDU:
    return RawPDU(90, bytes([pair, code]) + data, dev_id=1)


async def modbus(source: str, target: str, body, timeout: float = 0.5) -> None:
    """Run `body(client)` on one TCP connection from `source`."""
    host, port = target.split(":")
    c = AsyncModbusTcpClient(host, port=int(port), source_address=(source, 0), timeout=timeout,
                             retries=0, reconnect_delay=0)
    if not await c.connect():
        raise SystemExit(f"cannot connect to {target}")
    try:
        await body(c)
    finally:
        c.close()
    await asyncio.sleep(0.1)


async def req(c, what, call):
    """One request; reconnect when the stack dropped the connection after a timeout."""
    if not c.connected:
        await c.connect()
    try:
        rsp = await call()
        log.info("%s -> %s", what, rsp)
    except ModbusException as exc:
        log.info("%s -> %s", what, exc)


async def opcua(url: str, source: str, body, user: str | None = None) -> None:
    client = bind_source(Client(url, timeout=4), source)
    client.application_uri = f"urn:example:otwatch:rules:{source}"
    if user:
        client.set_user(user)
        client.set_password("dummy-password")  # dummy credential, in clear in the capture
    await client.connect()
    try:
        idx = await client.get_namespace_index(NS_URI)
        await body(client, idx)
    finally:
        await client.disconnect()
    await asyncio.sleep(0.1)


async def ua_read(client, idx):
    level = await client.nodes.objects.get_child([f"{idx}:Plant", f"{idx}:Tank", f"{idx}:Level"])
    for _ in range(2):
        log.info("level %s", await level.read_value())
        await asyncio.sleep(0.2)


async def ua_write(client, idx):
    sp = await client.nodes.objects.get_child([f"{idx}:Plant", f"{idx}:Tank", f"{idx}:Setpoint"])
    await sp.write_value(ua.DataValue(ua.Variant(61.0, ua.VariantType.Double)))
    log.info("setpoint now %s", await sp.read_value())


async def ua_call(client, idx):
    pump = await client.nodes.objects.get_child([f"{idx}:Plant", f"{idx}:Pump"])
    log.info("ResetCounter -> %s", await pump.call_method(f"{idx}:ResetCounter"))


async def run(a) -> None:
    plc, gw, silent = a.plc, a.gateway, a.silent_gateway
    eng, hmi, bad = a.eng, a.hmi, a.unknown
    s = a.step

    if s == "listen_only":
        async def body(c):
            # pymodbus sends it without waiting (a device in listen-only mode stays silent);
            # keep the connection open so that the server's answer is captured too.
            await req(c, "FC8/4", lambda: c.diag_force_listen_only(device_id=1, no_response_expected=True))
            await asyncio.sleep(0.3)
        await modbus(bad, plc, body)
    elif s == "restart_comm":
        await modbus(bad, plc, lambda c: req(c, "FC8/1", lambda: c.diag_restart_communication(False, device_id=1)))
    elif s == "clear_counters":
        async def body(c):
            await req(c, "FC8/10", lambda: c.diag_clear_counters(device_id=1))
            await req(c, "FC8/20", lambda: c.diag_clear_overrun_counter(device_id=1))
        await modbus(bad, plc, body)
    elif s == "umas_download":
        async def body(c):
            steps = [
                ("take reservation", umas(TAKE_RESERVATION, b"\x00\x00" + b"ENG-WS1".ljust(16, b"\x00"))),
                ("initialize download", umas(INIT_DOWNLOAD, struct.pack("<HH", 1, 0))),
                ("download block 1", umas(DOWNLOAD_BLOCK, struct.pack("<HH", 1, 1) + bytes(range(32)))),
                ("download block 2", umas(DOWNLOAD_BLOCK, struct.pack("<HH", 1, 2) + bytes(range(32, 64)))),
                ("end download", umas(END_DOWNLOAD, struct.pack("<HH", 1, 2))),
                ("release reservation", umas(RELEASE_RESERVATION)),
            ]
            for what, pdu in steps:
                await req(c, what, lambda pdu=pdu: c.execute(False, pdu))
                await asyncio.sleep(0.05)
        await modbus(eng, plc, body)
    elif s == "umas_stop_start":
        async def body(c):
            await req(c, "stop PLC", lambda: c.execute(False, umas(STOP_PLC, b"\xff\x00")))
            await asyncio.sleep(1.0)
            await req(c, "start PLC", lambda: c.execute(False, umas(START_PLC, b"\xff\x00")))
        await modbus(eng, plc, body)
    elif s == "write_foreign":
        await modbus(eng, plc, lambda c: req(c, "eng FC6 HR0=600", lambda: c.write_register(0, 600, device_id=1)))
        await modbus(hmi, plc, lambda c: req(c, "hmi FC16 HR1=450", lambda: c.write_registers(1, [450], device_id=1)))

        async def body(c):
            await req(c, "FC6 HR0=600", lambda: c.write_register(0, 600, device_id=1))
            await req(c, "FC16 HR2=1450", lambda: c.write_registers(2, [1450], device_id=1))
        await modbus(bad, plc, body)
    elif s == "program_foreign":
        async def body(c):
            await req(c, "take reservation", lambda: c.execute(False, umas(TAKE_RESERVATION, b"\x00\x00" + b"LAPTOP".ljust(16, b"\x00"))))
            await req(c, "initialize upload", lambda: c.execute(False, umas(INIT_UPLOAD, b"\x01\x00")))
            await req(c, "upload block", lambda: c.execute(False, umas(UPLOAD_BLOCK, b"\x01\x00\x01\x00")))
        await modbus(bad, plc, body)
    elif s == "identify_foreign":
        await modbus(eng, plc, lambda c: req(c, "eng FC43/14", lambda: c.read_device_information(
            read_code=1, object_id=0, device_id=1)))

        async def body(c):
            await req(c, "FC43/14 regular", lambda: c.read_device_information(read_code=2, object_id=0, device_id=1))
            await req(c, "FC17", lambda: c.report_device_id(device_id=1))
        await modbus(bad, plc, body)
    elif s == "fc_scan":
        skip = {5, 6, 8, 15, 16, 17, 21, 22, 23, 43, 90}

        async def body(c):
            for fc in range(1, 128):
                if fc not in skip:
                    await req(c, f"FC {fc}", lambda fc=fc: c.execute(False, RawPDU(fc, scan_payload(fc), dev_id=1)))
        await modbus(bad, plc, body)
    elif s == "address_scan":
        async def body(c):
            for addr in range(0, 200, 10):
                await req(c, f"HR {addr}", lambda addr=addr: c.read_holding_registers(addr, count=10, device_id=1))
            for addr in range(0, 100, 10):
                await req(c, f"IR {addr}", lambda addr=addr: c.read_input_registers(addr, count=10, device_id=1))
        await modbus(bad, plc, body)
    elif s in ("unit_scan", "unit_scan_silent"):
        target, timeout = (gw, 0.5) if s == "unit_scan" else (silent, 0.2)

        async def body(c):
            for unit in range(1, 31):
                await req(c, f"unit {unit}", lambda unit=unit: c.read_holding_registers(0, count=1, device_id=unit))
        await modbus(bad, target, body, timeout=timeout)
    elif s == "opcua_insecure":
        disc = bind_source(Client(a.ua_insecure, timeout=4), hmi)
        endpoints = await disc.connect_and_get_server_endpoints()
        log.info("%d endpoint(s): %s", len(endpoints), [e.SecurityMode for e in endpoints])
        await opcua(a.ua_insecure, hmi, ua_read)
        await opcua(a.ua_login, hmi, ua_read, user="operator")
    elif s == "opcua_anonymous":
        await opcua(a.ua_login, eng, ua_read, user="engineer")
        await opcua(a.ua_login, hmi, ua_read)
    elif s == "opcua_write":
        await opcua(a.ua_open, hmi, ua_write)
        await opcua(a.ua_open, bad, ua_write)
    elif s == "opcua_call":
        await opcua(a.ua_open, hmi, ua_call)
        await opcua(a.ua_open, bad, ua_call)
    else:
        raise SystemExit(f"unknown step {s}")


STEPS = ["listen_only", "restart_comm", "clear_counters", "umas_download", "umas_stop_start",
         "write_foreign", "program_foreign", "identify_foreign", "fc_scan", "address_scan",
         "unit_scan", "unit_scan_silent", "opcua_insecure", "opcua_anonymous", "opcua_write",
         "opcua_call"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("step", choices=STEPS)
    p.add_argument("--plc", default="127.0.0.100:502")
    p.add_argument("--gateway", default="127.0.0.101:502")
    p.add_argument("--silent-gateway", default="127.0.0.102:502")
    p.add_argument("--ua-login", default="opc.tcp://127.0.0.110:4840/plant/")
    p.add_argument("--ua-insecure", default="opc.tcp://127.0.0.111:4840/plant/")
    p.add_argument("--ua-open", default="opc.tcp://127.0.0.112:4840/plant/")
    p.add_argument("--eng", default="127.0.0.120")
    p.add_argument("--hmi", default="127.0.0.121")
    p.add_argument("--unknown", default="127.0.0.130")
    a = p.parse_args()
    for x in (a.plc, a.gateway, a.silent_gateway, a.eng, a.hmi, a.unknown,
              a.ua_login.split("//")[1], a.ua_insecure.split("//")[1], a.ua_open.split("//")[1]):
        if not x.startswith("127."):
            raise SystemExit("loopback addresses only")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("pymodbus").setLevel(logging.ERROR)
    logging.getLogger("asyncua").setLevel(logging.WARNING)
    asyncio.run(run(a))


if __name__ == "__main__":
    main()
