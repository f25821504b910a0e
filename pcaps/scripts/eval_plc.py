#!/usr/bin/env python3
"""Stationary PLC for the evaluation scenarios: a pymodbus server whose process repeats.

Same register map as modbus_plc.py (it reuses its datastore, gateway and catch-all helpers),
but the process is periodic: the tank fills and drains on a fixed --period (60 s) cycle, the
temperature swings with it, the drain pump runs in the second half of each cycle. A training
capture of several cycles therefore covers the whole normal range; --seed changes the phase
and the noise only. Setpoint writes are stored but do not move the cycle (the process is
stationary on purpose, so a test capture sees the same value ranges as training).

--freeze-at T --freeze-for D: from T s after start, unit 1's tank level (input register 0)
stops changing for D s while everything else goes on, as a stuck transmitter or a replayed
value would look. The window (wall clock, the clock tcpdump uses) goes to --labels.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import logging
import math
import random
import signal
import time

from pymodbus import ModbusDeviceIdentification
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator.simutils import SimUtils

from modbus_plc import BIT_COUNT, IR_COUNT, GatewayCore, make_device, u16, unsupported_pdus


def rfc3339(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


class CyclicTank:
    """Fill/drain cycle of a fixed period with seeded phase and noise."""

    def __init__(self, seed: int, period: float) -> None:
        self.rng = random.Random(seed)
        self.period = period
        self.phase = self.rng.uniform(0.0, period)
        self.t0 = time.monotonic()
        self.starts = 100 + self.rng.randrange(5)
        self.pump = False
        self.speed = 0.0
        self.frozen_level: float | None = None
        self.step(0.0)

    def step(self, dt_s: float) -> None:
        t = time.monotonic() - self.t0 + self.phase
        x = (t % self.period) / self.period  # 0..1 within the cycle
        # Fill for the first half (level 40 -> 70 %), drain for the second (70 -> 40 %).
        tri = 2.0 * x if x < 0.5 else 2.0 * (1.0 - x)
        pump = x >= 0.5
        if pump and not self.pump:
            self.starts += 1
        self.pump = pump
        self.speed += ((1450.0 if pump else 0.0) - self.speed) * min(1.0, dt_s / 1.5)
        self.level = 40.0 + 30.0 * tri + self.rng.gauss(0.0, 0.15)
        self.temp = 45.0 + 1.5 * math.sin(2.0 * math.pi * x) + self.rng.gauss(0.0, 0.05)
        self.inflow = 12.0 + 1.5 * math.sin(2.0 * math.pi * t / 13.0) + self.rng.gauss(0.0, 0.2)
        self.pressure = 1013.0 + self.level * 9.8 + self.rng.gauss(0.0, 1.5)
        self.valve = not pump

    def inputs(self) -> list[int]:
        level = self.level if self.frozen_level is None else self.frozen_level
        return [
            u16(level * 10.0),
            u16(self.temp * 10.0),
            u16(self.speed),
            u16(self.inflow * 10.0),
            u16(self.pressure),
            u16(self.starts),
            0, 0, 0, 0,
        ]


async def run(args: argparse.Namespace) -> None:
    identity = ModbusDeviceIdentification(
        info_name={
            "VendorName": "Acme Process Controls",
            "ProductCode": args.product,
            "MajorMinorRevision": "4.2.7",
            "ProductName": "Acme Tank Controller",
            "ModelName": f"{args.product} rev B",
            "UserApplicationName": args.name,
        }
    )
    units = [int(u) for u in args.units.split(",")]
    server = ModbusTcpServer(
        [make_device(u) for u in units], address=(args.host, args.port),
        identity=identity, custom_pdu=unsupported_pdus(),
    )
    server.context = GatewayCore(server.context)
    core = server.context.core
    tanks = {u: CyclicTank(args.seed * 100 + u, args.period) for u in units}
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await server.serve_forever(background=True)
    logging.info("PLC %s listening on %s:%d units %s", args.name, args.host, args.port, units)
    start = time.monotonic()
    freeze = {"t0": None, "t1": None}

    async def simulate() -> None:
        dt_s = 0.1
        while not stop.is_set():
            el = time.monotonic() - start
            for unit, tank in tanks.items():
                tank.step(dt_s)
                if unit == units[0] and args.freeze_at is not None:
                    if args.freeze_at <= el < args.freeze_at + args.freeze_for:
                        if tank.frozen_level is None:
                            tank.frozen_level = tank.level
                            freeze["t0"] = time.time()
                            logging.info("freeze level at %.1f", tank.level)
                    elif tank.frozen_level is not None:
                        tank.frozen_level = None
                        freeze["t1"] = time.time()
                        logging.info("level moves again")
                blocks = core.devices[unit].block
                blocks["i"][2][0:IR_COUNT] = tank.inputs()
                cbits = SimUtils.registersToBits([blocks["c"][2][0]])
                cbits[0], cbits[1], cbits[2] = tank.pump, tank.valve, tank.temp < 45.0
                blocks["c"][2][0] = SimUtils.bitsToRegisters(cbits)[0]
                bits = [False] * BIT_COUNT
                bits[0] = tank.level > 68.0
                bits[1] = tank.level < 42.0
                blocks["d"][2][0] = SimUtils.bitsToRegisters(bits)[0]
            await asyncio.sleep(dt_s)

    sim = asyncio.create_task(simulate())
    try:
        await asyncio.wait_for(stop.wait(), timeout=args.max_runtime)
    except asyncio.TimeoutError:
        logging.warning("PLC %s: max runtime reached", args.name)
    sim.cancel()
    await server.shutdown()
    if args.labels and freeze["t0"] is not None:
        t1 = freeze["t1"] or time.time()
        with open(args.labels, "a", encoding="utf-8") as f:
            f.write(f"{rfc3339(freeze['t0'])}\t{rfc3339(t1)}\tfrozen_value\t{args.host}\t"
                    f"tank level (input register 0, unit {units[0]}) stops changing while it is polled\n")
    logging.info("PLC %s stopped", args.name)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", required=True)
    p.add_argument("--port", type=int, default=502)
    p.add_argument("--name", default="PLC")
    p.add_argument("--product", default="ATC-100")
    p.add_argument("--units", default="1")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--period", type=float, default=60.0)
    p.add_argument("--freeze-at", type=float)
    p.add_argument("--freeze-for", type=float, default=45.0)
    p.add_argument("--labels")
    p.add_argument("--max-runtime", type=float, default=600.0)
    args = p.parse_args()
    if not args.host.startswith("127."):
        raise SystemExit("loopback addresses only")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("pymodbus").setLevel(logging.WARNING)
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
