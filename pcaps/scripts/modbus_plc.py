#!/usr/bin/env python3
"""Simulated PLC: a pymodbus Modbus/TCP server whose datastore follows a small process.

One process per PLC. The process (a tank with a level, a heater and a drain pump) is
stepped every 100 ms with a fixed random seed, and its values are written into the
pymodbus datastore, so polling clients see values that change smoothly. Setpoints
written by clients (holding registers) feed back into the process.

Register map (unit ids given by --units; every unit gets its own copy of the process):
  holding registers 0..19 (read/write):
    0 level setpoint (0.1 %)        1 temperature setpoint (0.1 degC)
    2 pump speed setpoint (rpm)     3 mode (0 manual, 1 auto)
    4 high level alarm limit (0.1 %) 5 low level alarm limit (0.1 %)
    6..9 tuning constants           10..19 spare
  input registers 0..9 (read only):
    0 tank level (0.1 %)   1 temperature (0.1 degC)  2 pump speed (rpm)
    3 inflow (0.1 m3/h)    4 pressure (mbar)         5 pump starts counter
    6 uptime (s, low word) 7..9 spare
  coils 0..15: 0 pump run, 1 inlet valve open, 2 heater on, 3 alarm acknowledge
  discrete inputs 0..15: 0 level high, 1 level low, 2 pump fault, 3 heater fault

Unknown unit ids are answered with exception 0x0B (gateway target failed to respond),
like a Modbus gateway would, or not at all with --silent-unknown-units (as other gateways do).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import math
import random
import signal
import time

from pymodbus import ExceptionResponse, ModbusDeviceIdentification
from pymodbus.constants import ExcCodes
from pymodbus.exceptions import NoSuchIdException
from pymodbus.pdu import DecodePDU, ModbusPDU
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice
from pymodbus.simulator.simutils import SimUtils

HR_COUNT = 20
IR_COUNT = 10
BIT_COUNT = 16


def u16(value: float) -> int:
    """Clamp and round a value into an unsigned 16-bit register."""
    return max(0, min(0xFFFF, int(round(value))))


class Tank:
    """First-order tank/heater/pump model with seeded noise."""

    def __init__(self, seed: int, level: float, temp: float) -> None:
        self.rng = random.Random(seed)
        self.level = level  # %
        self.temp = temp  # degC
        self.speed = 0.0  # rpm
        self.pump = False
        self.heater = False
        self.valve = True
        self.starts = 0
        self.t0 = time.monotonic()

    def step(self, dt: float, hr: list[int]) -> None:
        """Advance the process by dt seconds using setpoints from the holding registers."""
        level_sp = hr[0] / 10.0
        temp_sp = hr[1] / 10.0
        speed_sp = float(hr[2])
        # Level control with hysteresis: the pump drains the tank when it is too full.
        if not self.pump and self.level > level_sp + 4.0:
            self.pump = True
            self.starts += 1
        elif self.pump and self.level < level_sp - 4.0:
            self.pump = False
        target_speed = speed_sp if self.pump else 0.0
        self.speed += (target_speed - self.speed) * min(1.0, dt / 1.5)
        t = time.monotonic() - self.t0
        self.inflow = 12.0 + 3.0 * math.sin(t / 7.0) + self.rng.gauss(0.0, 0.2)
        outflow = 0.014 * self.speed
        self.level += (self.inflow - outflow) * dt * 0.35
        self.level = max(0.0, min(100.0, self.level))
        # Temperature control: on/off heater with a small band.
        if self.temp < temp_sp - 0.5:
            self.heater = True
        elif self.temp > temp_sp + 0.5:
            self.heater = False
        heat = 0.9 if self.heater else 0.0
        self.temp += (heat - (self.temp - 18.0) * 0.02) * dt + self.rng.gauss(0.0, 0.01)
        self.pressure = 1013.0 + self.level * 9.8 + self.rng.gauss(0.0, 1.5)

    def inputs(self) -> list[int]:
        """Input register image."""
        uptime = int(time.monotonic() - self.t0)
        regs = [
            u16(self.level * 10.0),
            u16(self.temp * 10.0),
            u16(self.speed),
            u16(self.inflow * 10.0),
            u16(self.pressure),
            u16(self.starts),
            uptime & 0xFFFF,
            0,
            0,
            0,
        ]
        return regs

    def discretes(self, hr: list[int]) -> list[bool]:
        """Discrete input image."""
        bits = [False] * BIT_COUNT
        bits[0] = self.level * 10.0 > hr[4]
        bits[1] = self.level * 10.0 < hr[5]
        return bits


class UnsupportedRequest(ModbusPDU):
    """Catch-all request for function codes pymodbus does not implement.

    pymodbus 3.16 answers an unknown function code with an exception response whose
    function code is 0x80 (instead of 0x80 | fc), which its own client cannot decode.
    A PLC answers 0x80 | fc with exception code 1 (illegal function), so the PLC
    registers one of these per unimplemented function code.
    """

    def decode(self, data: bytes) -> None:
        self.data = data

    async def datastore_update(self, context, device_id: int) -> ModbusPDU:
        _ = context
        return ExceptionResponse(self.function_code, ExcCodes.ILLEGAL_FUNCTION, device_id=device_id)


def unsupported_pdus() -> list[type[ModbusPDU]]:
    """One UnsupportedRequest subclass per function code 1..127 that pymodbus lacks."""
    known = set(DecodePDU(True).list_function_codes())
    return [
        type(f"UnsupportedFc{fc}", (UnsupportedRequest,), {"function_code": fc})
        for fc in range(1, 128)
        if fc not in known
    ]


class GatewayCore:
    """Wraps pymodbus' datastore core so unknown unit ids raise NoSuchIdException."""

    def __init__(self, core) -> None:
        self.core = core

    def _check(self, device_id: int) -> None:
        if device_id not in self.core.devices:
            raise NoSuchIdException(f"no unit {device_id}")

    def device_ids(self) -> list[int]:
        return self.core.device_ids()

    async def async_getValues(self, device_id, func_code, address, count=1):
        self._check(device_id)
        return await self.core.async_getValues(device_id, func_code, address, count)

    async def async_setValues(self, device_id, func_code, address, values):
        self._check(device_id)
        return await self.core.async_setValues(device_id, func_code, address, values)


def make_device(unit: int) -> SimDevice:
    """Build a device with four separate blocks (coils, discrete inputs, holding, input)."""
    hr = [600, 450, 1450, 1, 900, 100, 120, 35, 5, 0] + [0] * 10
    return SimDevice(
        id=unit,
        simdata=(
            [SimData(0, values=[False] * BIT_COUNT, datatype=DataType.BITS)],
            [SimData(0, values=[False] * BIT_COUNT, datatype=DataType.BITS, readonly=True)],
            [SimData(0, values=hr, datatype=DataType.REGISTERS)],
            [SimData(0, values=[0] * IR_COUNT, datatype=DataType.REGISTERS, readonly=True)],
        ),
    )


async def run(args: argparse.Namespace) -> None:
    identity = ModbusDeviceIdentification(
        info_name={
            "VendorName": "Acme Process Controls",
            "ProductCode": args.product,
            "MajorMinorRevision": "4.2.7",
            "VendorUrl": "http://acme-process.example",
            "ProductName": "Acme Tank Controller",
            "ModelName": f"{args.product} rev B",
            "UserApplicationName": args.name,
        }
    )
    units = [int(u) for u in args.units.split(",")]
    server = ModbusTcpServer(
        [make_device(u) for u in units],
        address=(args.host, args.port),
        identity=identity,
        custom_pdu=unsupported_pdus(),
    )
    server.context = GatewayCore(server.context)
    # A gateway that stays silent for unknown unit ids (pymodbus' ignore_missing_devices).
    server.ignore_missing_devices = args.silent_unknown_units
    core = server.context.core
    tanks = {
        u: Tank(args.seed * 100 + u, level=55.0 + 5.0 * i, temp=44.0 + i)
        for i, u in enumerate(units)
    }
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await server.serve_forever(background=True)
    logging.info("PLC %s listening on %s:%d units %s", args.name, args.host, args.port, units)

    async def simulate() -> None:
        dt = 0.1
        while not stop.is_set():
            for unit, tank in tanks.items():
                blocks = core.devices[unit].block
                hr = blocks["h"][2]
                ir = blocks["i"][2]
                coils = blocks["c"][2]
                dis = blocks["d"][2]
                # Coil 0 (pump run) in manual mode is commanded by the client.
                tank.step(dt, hr)
                ir[0:IR_COUNT] = tank.inputs()
                cbits = SimUtils.registersToBits([coils[0]])
                cbits[0] = tank.pump
                cbits[1] = tank.valve
                cbits[2] = tank.heater
                coils[0] = SimUtils.bitsToRegisters(cbits)[0]
                dis[0] = SimUtils.bitsToRegisters(tank.discretes(hr))[0]
            await asyncio.sleep(dt)

    sim = asyncio.create_task(simulate())
    try:
        await asyncio.wait_for(stop.wait(), timeout=args.max_runtime)
    except asyncio.TimeoutError:
        logging.warning("PLC %s: max runtime reached", args.name)
    sim.cancel()
    await server.shutdown()
    logging.info("PLC %s stopped", args.name)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", required=True)
    p.add_argument("--port", type=int, default=502)
    p.add_argument("--name", default="PLC")
    p.add_argument("--product", default="ATC-100")
    p.add_argument("--units", default="1", help="comma-separated unit ids")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--max-runtime", type=float, default=120.0)
    p.add_argument("--silent-unknown-units", action="store_true",
                   help="answer nothing (instead of exception 11) for unknown unit ids")
    args = p.parse_args()
    if not args.host.startswith("127."):
        raise SystemExit("loopback addresses only")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("pymodbus").setLevel(logging.WARNING)
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
