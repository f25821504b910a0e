#!/usr/bin/env python3
"""OPC UA clients (asyncua) for the plant sample capture.

Sessions, all with security None and each from its own loopback address:
  HMI (--hmi), anonymous, server 1: GetEndpoints, browse Objects/Plant, read, write
      Tank.Setpoint, call Pump.ResetCounter, subscription with 3 monitored items
      (publishing 500 ms) for --subscribe seconds, delete it, close.
  Engineering (--eng), user name "operator" with a dummy password, server 1: reads.
  HMI (--hmi), anonymous, server 2 (non-standard port): browse, polling reads and a
      short subscription.
asyncua's client has no option for the local address, so its socket connect is wrapped
to bind the source address (see bind_source).
"""

from __future__ import annotations

import argparse
import asyncio
import logging

from asyncua import Client, ua
from asyncua.client.ua_client import UaClientState

NS_URI = "urn:example:otwatch:plant"
log = logging.getLogger("uaclients")


def bind_source(client: Client, source: str) -> Client:
    """Make the client's TCP connection start from `source` (asyncua 2.1 UaClient.connect_socket)."""
    uac = client.uaclient

    async def connect_socket(host: str, port: int) -> None:
        uac._set_state(UaClientState.CONNECTING)
        try:
            await asyncio.wait_for(
                asyncio.get_running_loop().create_connection(
                    uac._make_protocol, host, port, local_addr=(source, 0)
                ),
                uac._timeout,
            )
        except BaseException:
            uac._set_state(UaClientState.DISCONNECTED)
            raise
        uac._set_state(UaClientState.SOCKET_OPEN)

    uac.connect_socket = connect_socket
    return client


class Printer:
    """Subscription handler: counts data changes."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.count = 0

    def datachange_notification(self, node, val, data):
        _ = node, val, data
        self.count += 1


async def browse_tree(node, depth: int, out: list) -> None:
    """Browse children (hierarchical references) down to `depth`."""
    for child in await node.get_children():
        out.append(child)
        if depth > 1:
            await browse_tree(child, depth - 1, out)


async def hmi_server1(url: str, source: str, subscribe: float) -> None:
    # A discovery connection first, as most HMIs do.
    disc = bind_source(Client(url, timeout=4), source)
    endpoints = await disc.connect_and_get_server_endpoints()
    log.info("hmi: %d endpoint(s): %s", len(endpoints), [e.SecurityPolicyUri for e in endpoints])

    client = bind_source(Client(url, timeout=4), source)
    client.application_uri = "urn:example:otwatch:hmi"
    client.name = "Plant HMI"
    await client.connect()
    try:
        idx = await client.get_namespace_index(NS_URI)
        objects = client.nodes.objects
        nodes: list = []
        await browse_tree(objects, 1, nodes)
        plant = await objects.get_child(f"{idx}:Plant")
        await browse_tree(plant, 2, nodes)
        names = [(await n.read_browse_name()).Name for n in nodes]
        log.info("hmi: browsed %s", names)
        tank = await plant.get_child(f"{idx}:Tank")
        pump = await plant.get_child(f"{idx}:Pump")
        level = await tank.get_child(f"{idx}:Level")
        temp = await tank.get_child(f"{idx}:Temperature")
        setpoint = await tank.get_child(f"{idx}:Setpoint")
        speed = await pump.get_child(f"{idx}:Speed")
        starts = await pump.get_child(f"{idx}:StartCount")
        values = await client.read_values([level, temp, setpoint, speed, starts])
        log.info("hmi: read %s", values)
        await setpoint.write_value(ua.DataValue(ua.Variant(62.5, ua.VariantType.Double)))
        log.info("hmi: setpoint now %s", await setpoint.read_value())
        previous = await pump.call_method(f"{idx}:ResetCounter")
        log.info("hmi: ResetCounter -> %s", previous)

        handler = Printer("hmi1")
        sub = await client.create_subscription(500, handler)
        await sub.subscribe_data_change([level, temp, speed])
        await asyncio.sleep(subscribe)
        await sub.delete()
        log.info("hmi: %d data changes", handler.count)
        await setpoint.write_value(ua.DataValue(ua.Variant(60.0, ua.VariantType.Double)))
    finally:
        await client.disconnect()


async def eng_server1(url: str, source: str, rounds: int) -> None:
    client = bind_source(Client(url, timeout=4), source)
    client.application_uri = "urn:example:otwatch:engineering"
    client.name = "Engineering Workstation"
    client.set_user("operator")
    client.set_password("dummy-password")  # dummy credential, visible in clear in the capture
    await client.connect()
    try:
        idx = await client.get_namespace_index(NS_URI)
        tank = await client.nodes.objects.get_child([f"{idx}:Plant", f"{idx}:Tank"])
        level = await tank.get_child(f"{idx}:Level")
        temp = await tank.get_child(f"{idx}:Temperature")
        status = client.get_node(ua.ObjectIds.Server_ServerStatus_State)
        for _ in range(rounds):
            vals = await client.read_values([level, temp, status])
            log.info("eng: %s", vals)
            await asyncio.sleep(1.0)
    finally:
        await client.disconnect()


async def hmi_server2(url: str, source: str, rounds: int) -> None:
    client = bind_source(Client(url, timeout=4), source)
    client.application_uri = "urn:example:otwatch:hmi"
    client.name = "Plant HMI"
    await client.connect()
    try:
        idx = await client.get_namespace_index(NS_URI)
        plant = await client.nodes.objects.get_child(f"{idx}:Plant")
        nodes: list = []
        await browse_tree(plant, 2, nodes)
        level = await plant.get_child([f"{idx}:Tank", f"{idx}:Level"])
        temp = await plant.get_child([f"{idx}:Tank", f"{idx}:Temperature"])
        handler = Printer("hmi2")
        sub = await client.create_subscription(1000, handler)
        await sub.subscribe_data_change([level])
        for _ in range(rounds):
            await client.read_values([level, temp])
            await asyncio.sleep(1.0)
        await sub.delete()
        log.info("hmi2: %d data changes", handler.count)
    finally:
        await client.disconnect()


async def run(args) -> None:
    async def later(delay, coro):
        await asyncio.sleep(delay)
        await coro

    await asyncio.gather(
        hmi_server1(args.server1, args.hmi, args.subscribe),
        later(2.0, eng_server1(args.server1, args.eng, 8)),
        later(1.0, hmi_server2(args.server2, args.hmi, 12)),
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--hmi", default="127.0.0.20")
    p.add_argument("--eng", default="127.0.0.30")
    p.add_argument("--server1", default="opc.tcp://127.0.0.10:4840/plant/")
    p.add_argument("--server2", default="opc.tcp://127.0.0.11:48400/boiler/")
    p.add_argument("--subscribe", type=float, default=12.0)
    args = p.parse_args()
    for a in (args.hmi, args.eng):
        if not a.startswith("127."):
            raise SystemExit("loopback addresses only")
    for u in (args.server1, args.server2):
        if not u.startswith("opc.tcp://127."):
            raise SystemExit("loopback addresses only")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("asyncua").setLevel(logging.WARNING)
    asyncio.run(asyncio.wait_for(run(args), timeout=45))


if __name__ == "__main__":
    main()
