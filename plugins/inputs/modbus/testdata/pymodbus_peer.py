"""An independent Modbus peer for the inputs.modbus tests: pymodbus serving
holding registers given on the command line, over Modbus TCP or RTU over
TCP, on 127.0.0.1 and a free port it prints once it accepts connections.

    python3 pymodbus_peer.py [--rtu] ADDR=HEX ...

ADDR=HEX sets the registers from ADDR on to the big-endian 16-bit words of
the hex bytes (padded with a zero byte when odd): the test encodes nothing
itself for the peer, it passes bytes the peer serves as they are, and the
values are computed here with Python's own struct and str encoders when the
argument is one of the typed forms:

    ADDR=str:TEXT        TEXT, two bytes per register, high byte first
    ADDR=f16:VALUE       an IEEE half float (struct 'e'), big-endian
    ADDR=bcd16:N         N as 4 packed BCD digits
    ADDR=bcd32:N         N as 8 packed BCD digits, first register high
    ADDR=u8h:N / u8l:N   N in the high / low byte of the register, the other
                         byte set to 0xA5 (so that a read of the wrong byte,
                         or a write that clobbers it, shows)

It runs until its standard input closes (the test process ends).
"""
import asyncio
import socket
import struct
import sys
import threading
import os

from pymodbus.datastore import (ModbusSequentialDataBlock, ModbusServerContext,
                                ModbusSlaveContext)
from pymodbus.framer.rtu_framer import ModbusRtuFramer
from pymodbus.framer.socket_framer import ModbusSocketFramer
from pymodbus.server.async_io import ModbusTcpServer


def encode(kind, arg):
    if kind == "str":
        b = arg.encode("utf-8")
    elif kind == "f16":
        b = struct.pack(">e", float(arg))
    elif kind == "bcd16":
        b = struct.pack(">H", int(str(int(arg)), 16))
    elif kind == "bcd32":
        b = struct.pack(">I", int(str(int(arg)), 16))
    elif kind == "u8h":
        b = bytes([int(arg) & 0xFF, 0xA5])
    elif kind == "u8l":
        b = bytes([0xA5, int(arg) & 0xFF])
    elif kind == "hex":
        b = bytes.fromhex(arg)
    else:
        raise SystemExit("unknown value kind %r" % kind)
    if len(b) % 2:
        b += b"\x00"
    return [struct.unpack(">H", b[i:i + 2])[0] for i in range(0, len(b), 2)]


def main():
    args = sys.argv[1:]
    framer = ModbusSocketFramer
    if args and args[0] == "--rtu":
        framer, args = ModbusRtuFramer, args[1:]
    regs = [0] * 1000
    for a in args:
        addr, _, val = a.partition("=")
        kind, sep, rest = val.partition(":")
        words = encode(kind, rest) if sep else encode("hex", val)
        regs[int(addr):int(addr) + len(words)] = words
    block = ModbusSequentialDataBlock(0, regs)
    slave = ModbusSlaveContext(hr=block, ir=ModbusSequentialDataBlock(0, list(regs)), zero_mode=True)
    context = ModbusServerContext(slaves=slave, single=True)

    # A free port: bound and released, then served (a clash is retried by
    # the test, which reads the port printed).
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()

    async def run():
        server = ModbusTcpServer(context, framer, None, ("127.0.0.1", port))
        task = asyncio.create_task(server.serve_forever())
        await server.serving
        print("PORT %d" % port, flush=True)
        await task

    # The test ends the peer by closing its stdin (or killing it).
    def watch():
        sys.stdin.read()
        os._exit(0)
    threading.Thread(target=watch, daemon=True).start()
    asyncio.run(run())


if __name__ == "__main__":
    main()
