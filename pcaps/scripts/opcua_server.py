#!/usr/bin/env python3
"""Simulated plant OPC UA server (asyncua): security None, anonymous and user-name logins.

Address space (namespace "urn:example:otwatch:plant"):
  Objects/Plant/Tank   Level (Double, %), Temperature (Double, degC), Setpoint (Double, %, writable)
  Objects/Plant/Pump   Speed (Double, rpm), Running (Boolean), StartCount (UInt32),
                       ResetCounter() -> previous StartCount (UInt32)
Values are stepped every 200 ms with a fixed random seed. Any user name is accepted with
any password (the sample captures use the dummy login operator / dummy-password), so the
password travels in clear in the capture: the endpoint has no security and no certificate.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import math
import random
import signal

from asyncua import Server, ua
from asyncua.common.methods import uamethod
from asyncua.crypto.permission_rules import User, UserRole

NS_URI = "urn:example:otwatch:plant"


class PlantUserManager:
    """Anonymous users and any user name are let in with the User role."""

    def get_user(self, iserver, username=None, password=None, certificate=None):
        _ = iserver, password, certificate
        if username:
            logging.info("user-name login: %s", username)
            return User(role=UserRole.User, name=username)
        return User(role=UserRole.User)


async def run(args: argparse.Namespace) -> None:
    server = Server(user_manager=PlantUserManager())
    await server.init()
    server.set_endpoint(f"opc.tcp://{args.host}:{args.port}{args.path}")
    server.set_server_name(args.name)
    await server.set_application_uri(f"urn:example:otwatch:{args.name.replace(' ', '')}")
    server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
    server.set_identity_tokens([ua.AnonymousIdentityToken, ua.UserNameIdentityToken])

    idx = await server.register_namespace(NS_URI)
    plant = await server.nodes.objects.add_object(idx, "Plant")
    tank = await plant.add_object(idx, "Tank")
    pump = await plant.add_object(idx, "Pump")
    level = await tank.add_variable(idx, "Level", 55.0, ua.VariantType.Double)
    temp = await tank.add_variable(idx, "Temperature", 44.0, ua.VariantType.Double)
    setpoint = await tank.add_variable(idx, "Setpoint", 60.0, ua.VariantType.Double)
    await setpoint.set_writable()
    speed = await pump.add_variable(idx, "Speed", 0.0, ua.VariantType.Double)
    running = await pump.add_variable(idx, "Running", False, ua.VariantType.Boolean)
    starts = await pump.add_variable(idx, "StartCount", 0, ua.VariantType.UInt32)

    state = {"starts": 0}

    @uamethod
    async def reset_counter(parent):
        _ = parent
        previous = state["starts"]
        state["starts"] = 0
        await starts.write_value(ua.Variant(0, ua.VariantType.UInt32))
        logging.info("ResetCounter called (was %d)", previous)
        return ua.Variant(previous, ua.VariantType.UInt32)

    await pump.add_method(idx, "ResetCounter", reset_counter, [], [ua.VariantType.UInt32])

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    rng = random.Random(args.seed)
    async with server:
        logging.info("OPC UA server %s on %s:%d%s", args.name, args.host, args.port, args.path)
        lvl, tmp, spd, on, t = 55.0, 44.0, 0.0, False, 0.0
        dt = 0.2
        while not stop.is_set():
            sp = float(await setpoint.read_value())
            if not on and lvl > sp + 4.0:
                on = True
                state["starts"] += 1
            elif on and lvl < sp - 4.0:
                on = False
            spd += ((1450.0 if on else 0.0) - spd) * 0.15
            inflow = 12.0 + 3.0 * math.sin(t / 7.0) + rng.gauss(0.0, 0.2)
            lvl = min(100.0, max(0.0, lvl + (inflow - 0.014 * spd) * dt * 0.35))
            tmp += (0.45 - (tmp - 18.0) * 0.015) * dt + rng.gauss(0.0, 0.02)
            await level.write_value(round(lvl, 3))
            await temp.write_value(round(tmp, 3))
            await speed.write_value(round(spd, 1))
            await running.write_value(on)
            await starts.write_value(ua.Variant(state["starts"], ua.VariantType.UInt32))
            t += dt
            try:
                await asyncio.wait_for(stop.wait(), timeout=dt)
            except asyncio.TimeoutError:
                pass
            if t > args.max_runtime:
                logging.warning("max runtime reached")
                break
    logging.info("OPC UA server %s stopped", args.name)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", required=True)
    p.add_argument("--port", type=int, default=4840)
    p.add_argument("--path", default="/plant/")
    p.add_argument("--name", default="Plant OPC UA")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--max-runtime", type=float, default=120.0)
    args = p.parse_args()
    if not args.host.startswith("127."):
        raise SystemExit("loopback addresses only")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("asyncua").setLevel(logging.WARNING)
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
