"""A third-party Modbus server for the end-to-end tests: pymodbus 3.8
(installed by scripts/install-deps into a virtualenv), Modbus TCP, RTU over
TCP or RTU on a serial line, several unit ids, every table 64 entries (an address beyond
answers "illegal data address").

The test drives the register image over stdin, one command a line:

    set UNIT TABLE ADDRESS VALUE...   TABLE: ir, hr, co, di; 0-based wire
                                      addresses; answers "ok"

It prints "ready" once the datastore exists and exits when stdin closes.
"""

import argparse
import asyncio
import os
import sys
import threading

from pymodbus import FramerType
from pymodbus.datastore import (
    ModbusSequentialDataBlock,
    ModbusServerContext,
    ModbusSlaveContext,
)
from pymodbus.server import StartAsyncSerialServer, StartAsyncTcpServer

SIZE = 64
TABLES = {"co": 1, "di": 2, "hr": 3, "ir": 4}


def block():
    # pymodbus 3.8 adds 1 to every wire address before it looks in a block,
    # so a block starting at 1 holds wire addresses 0..SIZE-1.
    return ModbusSequentialDataBlock(1, [0] * SIZE)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tcp", type=int, help="port on 127.0.0.1")
    ap.add_argument("--serial", help="serial device (RTU)")
    ap.add_argument(
        "--rtu-over-tcp", action="store_true", help="RTU framing on the TCP port"
    )
    ap.add_argument("--baud", type=int, default=19200)
    ap.add_argument("--units", default="1")
    a = ap.parse_args()
    units = [int(u) for u in a.units.split(",")]
    slaves = {
        u: ModbusSlaveContext(di=block(), co=block(), ir=block(), hr=block())
        for u in units
    }
    ctx = ModbusServerContext(slaves=slaves, single=False)

    def commands():
        for line in sys.stdin:
            parts = line.split()
            if not parts:
                continue
            try:
                if parts[0] == "set":
                    unit, table, address = int(parts[1]), parts[2], int(parts[3])
                    values = [int(v, 0) for v in parts[4:]]
                    ctx[unit].setValues(TABLES[table], address, values)
                    print("ok", flush=True)
                else:
                    print("error unknown command", flush=True)
            except Exception as e:  # report, keep serving
                print(f"error {e}", flush=True)
        os._exit(0)

    threading.Thread(target=commands, daemon=True).start()
    print("ready", flush=True)
    if a.tcp:
        framer = FramerType.RTU if a.rtu_over_tcp else FramerType.SOCKET
        asyncio.run(
            StartAsyncTcpServer(
                context=ctx, address=("127.0.0.1", a.tcp), framer=framer
            )
        )
    else:
        asyncio.run(
            StartAsyncSerialServer(
                context=ctx, framer=FramerType.RTU, port=a.serial, baudrate=a.baud
            )
        )


if __name__ == "__main__":
    main()
