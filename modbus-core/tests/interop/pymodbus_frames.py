"""Modbus frames built and parsed by pymodbus, for the interop test.

`generate`: print one line per message, `name direction mbap-hex rtu-hex`,
each frame built by pymodbus's own framers (transaction id 7, unit 1).

`check`: read lines `direction mbap-hex rtu-hex` on stdin (frames built by
outpost-modbus-core), parse each with pymodbus, build it again, and print
`ok` when pymodbus's frame is byte-identical, else `mismatch <details>`.
"""

import sys

from pymodbus.framer import FramerRTU, FramerSocket
from pymodbus.pdu import DecodePDU, ExceptionResponse, FileRecord
from pymodbus.pdu import bit_message as bit
from pymodbus.pdu import diag_message as diag
from pymodbus.pdu import file_message as file
from pymodbus.pdu import mei_message as mei
from pymodbus.pdu import other_message as other
from pymodbus.pdu import register_message as reg

TID = 7
UNIT = 1

COILS_19 = [True, False, True, True, False, False, True, True,
            True, True, False, True, False, True, True, False,
            True, False, True]
COILS_10 = [True, False, True, True, False, False, True, True, True, False]


def messages():
    """(name, direction, pdu) for every message of the test."""
    k = {"dev_id": UNIT, "transaction_id": TID}
    yield "read_coils", "request", bit.ReadCoilsRequest(address=19, count=19, **k)
    yield "read_coils", "response", bit.ReadCoilsResponse(bits=COILS_19, **k)
    yield "read_discrete_inputs", "request", bit.ReadDiscreteInputsRequest(address=196, count=22, **k)
    yield "read_holding_registers", "request", reg.ReadHoldingRegistersRequest(address=107, count=3, **k)
    yield "read_holding_registers", "response", reg.ReadHoldingRegistersResponse(registers=[555, 0, 100], **k)
    yield "read_input_registers", "request", reg.ReadInputRegistersRequest(address=8, count=1, **k)
    yield "read_input_registers", "response", reg.ReadInputRegistersResponse(registers=[10], **k)
    yield "write_single_coil", "request", bit.WriteSingleCoilRequest(address=172, bits=[True], **k)
    yield "write_single_coil", "response", bit.WriteSingleCoilResponse(address=172, bits=[True], **k)
    yield "write_single_register", "request", reg.WriteSingleRegisterRequest(address=1, registers=[3], **k)
    yield "write_multiple_coils", "request", bit.WriteMultipleCoilsRequest(address=19, bits=COILS_10, **k)
    yield "write_multiple_coils", "response", bit.WriteMultipleCoilsResponse(address=19, count=10, **k)
    yield "write_multiple_registers", "request", reg.WriteMultipleRegistersRequest(address=1, registers=[10, 258], **k)
    yield "write_multiple_registers", "response", reg.WriteMultipleRegistersResponse(address=1, count=2, **k)
    yield "mask_write_register", "request", reg.MaskWriteRegisterRequest(address=4, and_mask=0xF2, or_mask=0x25, **k)
    yield "read_write_multiple_registers", "request", reg.ReadWriteMultipleRegistersRequest(
        read_address=3, read_count=6, write_address=14, write_registers=[0xFF, 0xFF, 0xFF], **k)
    yield "read_write_multiple_registers", "response", reg.ReadWriteMultipleRegistersResponse(
        registers=[0xFE, 0xACD, 1, 3, 0xD, 0xFF], **k)
    yield "read_exception_status", "request", other.ReadExceptionStatusRequest(**k)
    yield "read_exception_status", "response", other.ReadExceptionStatusResponse(status=0x6D, **k)
    yield "diagnostics_echo", "request", diag.ReturnQueryDataRequest(message=0xA537, **k)
    yield "diagnostics_bus_messages", "request", diag.ReturnBusMessageCountRequest(**k)
    yield "get_comm_event_counter", "request", other.GetCommEventCounterRequest(**k)
    yield "get_comm_event_log", "request", other.GetCommEventLogRequest(**k)
    yield "report_server_id", "request", other.ReportDeviceIdRequest(**k)
    yield "read_fifo_queue", "request", file.ReadFifoQueueRequest(address=0x4DE, **k)
    yield "read_fifo_queue", "response", file.ReadFifoQueueResponse(values=[0x1B8, 0x1284], **k)
    yield "read_file_record", "request", file.ReadFileRecordRequest(records=[
        FileRecord(file_number=4, record_number=1, record_length=4),
        FileRecord(file_number=3, record_number=9, record_length=4)], **k)
    yield "write_file_record", "request", file.WriteFileRecordRequest(records=[
        FileRecord(file_number=4, record_number=7, record_data=bytes.fromhex("06af04be100d"))], **k)
    yield "read_device_identification", "request", mei.ReadDeviceInformationRequest(read_code=1, object_id=0, **k)
    yield "read_device_identification", "response", mei.ReadDeviceInformationResponse(
        read_code=1, information={0: b"Company identification", 1: b"Product code XX", 2: b"V2.11"}, **k)
    exc = ExceptionResponse(0x01, 0x02, device_id=UNIT, transaction=TID)
    exc.transaction_id = TID
    exc.dev_id = UNIT
    yield "exception", "response", exc


def generate():
    # Each framer gets fresh messages: pymodbus's device identification
    # response counts its objects again on every encode.
    for (name, direction, a), (_, _, b) in zip(messages(), messages()):
        is_server = direction == "response"
        sock = FramerSocket(DecodePDU(is_server)).buildFrame(a)
        rtu = FramerRTU(DecodePDU(is_server)).buildFrame(b)
        print(name, direction, sock.hex(), rtu.hex())


def check():
    for line in sys.stdin:
        direction, sock_hex, rtu_hex = line.split()
        # A server decodes requests; a client decodes responses.
        is_server = direction == "request"
        results = []
        for framer_class, hexed in ((FramerSocket, sock_hex), (FramerRTU, rtu_hex)):
            data = bytes.fromhex(hexed)
            framer = framer_class(DecodePDU(is_server))
            try:
                used, pdu = framer.handleFrame(data, 0, 0)
            except Exception as exc:  # report, never crash the protocol
                results.append(f"{framer_class.__name__}:error:{exc!r}")
                continue
            if pdu is None:
                results.append(f"{framer_class.__name__}:unparsed")
                continue
            again = framer_class(DecodePDU(not is_server)).buildFrame(pdu)
            if again != data:
                results.append(f"{framer_class.__name__}:{again.hex()}")
        print("ok" if not results else "mismatch " + " ".join(results), flush=True)


if __name__ == "__main__":
    {"generate": generate, "check": check}[sys.argv[1]]()
