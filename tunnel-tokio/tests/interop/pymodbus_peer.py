"""pymodbus as a real Modbus peer of Outpost.

device PORTFILE: a Modbus TCP server on 127.0.0.1 (an ephemeral port, written
    to PORTFILE once listening) with 100 of each table: holding register i
    holds i, input register i holds 1000 + i, discrete input i is i % 3 == 0.
client PORT: a Modbus TCP client of 127.0.0.1:PORT (the hub's gateway) that
    reads and writes every table and checks a policy denial; prints OK.
tls-client PORT CERT KEY CA: a Modbus/TCP Security client (pymodbus's
    AsyncModbusTlsClient) of 127.0.0.1:PORT (the hub's secure gateway), whose
    certificate CERT carries the role "operator"; it verifies the gateway
    against CA, reads and writes, and checks that a write the agent's policy
    denies gets exception 01; prints OK.
"""

import asyncio
import ssl
import sys

from pymodbus.client import AsyncModbusTcpClient, AsyncModbusTlsClient
from pymodbus.datastore import ModbusDeviceContext, ModbusSequentialDataBlock, ModbusServerContext
from pymodbus.server import ModbusTcpServer


async def device(portfile):
    # pymodbus's data blocks are addressed from 1 (address 0 is reserved).
    context = ModbusServerContext(
        devices=ModbusDeviceContext(
            di=ModbusSequentialDataBlock(1, [i % 3 == 0 for i in range(100)]),
            co=ModbusSequentialDataBlock(1, [False] * 100),
            hr=ModbusSequentialDataBlock(1, list(range(100))),
            ir=ModbusSequentialDataBlock(1, [1000 + i for i in range(100)]),
        ),
        single=True,
    )
    server = ModbusTcpServer(context, address=("127.0.0.1", 0))
    task = asyncio.create_task(server.serve_forever())
    for _ in range(500):
        if server.transport is not None:
            break
        await asyncio.sleep(0.01)
    port = server.transport.sockets[0].getsockname()[1]
    with open(portfile + ".tmp", "w") as f:
        f.write(str(port))
    import os

    os.replace(portfile + ".tmp", portfile)
    # Serve until the parent's test ends (bounded: it kills us first).
    await asyncio.wait_for(task, timeout=120)


def check(cond, what):
    if not cond:
        print("FAIL", what)
        sys.exit(1)


async def client(port):
    c = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=5, retries=0)
    check(await c.connect(), "connect")
    r = await c.read_holding_registers(10, count=3, device_id=1)
    check(not r.isError() and r.registers == [10, 11, 12], f"read holding {r}")
    r = await c.read_input_registers(0, count=2, device_id=1)
    check(not r.isError() and r.registers == [1000, 1001], f"read input {r}")
    r = await c.read_discrete_inputs(0, count=4, device_id=1)
    check(not r.isError() and r.bits[:4] == [True, False, False, True], f"read discrete {r}")
    r = await c.write_coils(5, [True, False, True], device_id=1)
    check(not r.isError(), f"write coils {r}")
    r = await c.read_coils(4, count=5, device_id=1)
    check(not r.isError() and r.bits[:5] == [False, True, False, True, False], f"read coils {r}")
    r = await c.write_registers(0, [7, 8, 9], device_id=1)
    check(not r.isError(), f"write registers {r}")
    r = await c.write_register(3, 0xBEEF, device_id=1)
    check(not r.isError(), f"write register {r}")
    r = await c.read_holding_registers(0, count=4, device_id=1)
    check(not r.isError() and r.registers == [7, 8, 9, 0xBEEF], f"read back {r}")
    # Past the operator's write span: the agent's policy answers 02.
    r = await c.write_register(70, 1, device_id=1)
    check(r.isError() and r.exception_code == 2, f"denied write {r}")
    c.close()
    print("OK")


async def tls_client(port, cert, key, ca):
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert, key)
    c = AsyncModbusTlsClient("127.0.0.1", port=port, sslctx=ctx, timeout=5, retries=0)
    check(await c.connect(), "TLS connect")
    r = await c.read_holding_registers(10, count=3, device_id=1)
    check(not r.isError() and r.registers == [10, 11, 12], f"read holding {r}")
    r = await c.write_register(5, 555, device_id=1)
    check(not r.isError(), f"write register {r}")
    r = await c.write_coils(2, [True, True], device_id=1)
    check(not r.isError(), f"write coils {r}")
    r = await c.read_coils(1, count=3, device_id=1)
    check(not r.isError() and r.bits[:3] == [False, True, True], f"read coils {r}")
    r = await c.read_holding_registers(4, count=3, device_id=1)
    check(not r.isError() and r.registers == [4, 555, 6], f"read back {r}")
    # Past the operator's write span: Modbus/TCP Security answers 01.
    r = await c.write_register(70, 1, device_id=1)
    check(r.isError() and r.exception_code == 1, f"denied write {r}")
    c.close()
    # TLS 1.2 too (the specification's minimum), with an ECDHE AEAD suite.
    ctx12 = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca)
    ctx12.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx12.load_cert_chain(cert, key)
    c = AsyncModbusTlsClient("127.0.0.1", port=port, sslctx=ctx12, timeout=5, retries=0)
    check(await c.connect(), "TLS 1.2 connect")
    r = await c.read_holding_registers(5, count=1, device_id=1)
    check(not r.isError() and r.registers == [555], f"read over TLS 1.2 {r}")
    version = c.ctx.transport.get_extra_info("ssl_object").version() if c.ctx.transport else "?"
    check(version == "TLSv1.2", f"negotiated {version}")
    c.close()
    print("OK")


if __name__ == "__main__":
    mode, arg = sys.argv[1], sys.argv[2]
    if mode == "device":
        asyncio.run(device(arg))
    elif mode == "tls-client":
        asyncio.run(tls_client(int(arg), *sys.argv[3:6]))
    else:
        asyncio.run(client(int(arg)))
