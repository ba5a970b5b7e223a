"""A writer of genuine AEDAT4 files (the iniVation DV format), for tests: the CIFAR10-DVS reader
(tonic.io.read_aedat4 -> the `aedat` package) is exercised on files laid out as DV writes them.

File layout (little-endian throughout):
  "#!AER-DAT4.0\\r\\n"                      14-byte magic
  u32 n + IOHeader flatbuffer (n bytes)     size-prefixed, identifier "IOHE": compression,
                                            dataTablePosition (file offset of the table, or -1),
                                            infoNode (the XML that names the streams)
  per packet: i32 stream id, i32 size, then `size` bytes: a size-prefixed flatbuffer
              (identifier "EVTS" for EventPacket, "TRIG" for TriggerPacket); compression none
  FileDataTable                             size-prefixed flatbuffer "FTAB" at dataTablePosition:
                                            per packet its byte offset, header, element count and
                                            first / last timestamp
Schemas (dv-processing / aedat's .fbs): struct Event {t: int64; x: int16; y: int16; on: bool}
(16 bytes, 8-aligned); table EventPacket {elements: [Event]}; table Trigger {t: int64; source: int8};
table TriggerPacket {elements: [Trigger]}; table IOHeader {compression: int32; dataTablePosition:
int64 = -1; infoNode: string}; struct PacketHeader {StreamID: int32; Size: int32}; table
FileDataDefinition {ByteOffset: int64; PacketInfo: PacketHeader; NumElements: int64;
TimestampStart: int64; TimestampEnd: int64}; table FileDataTable {Table: [FileDataDefinition]}.

The flatbuffers are built by hand with struct (the `flatbuffers` package is not installed): laid
out front to back (children after their parents, so every uoffset points forward; vtables just
before their tables), each scalar aligned to its size relative to the start of its buffer,
including the 4-byte size prefix, as FlatBufferBuilder.FinishSizePrefixed does.
"""
from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

MAGIC = b"#!AER-DAT4.0\r\n"
_ALIGN = {"ii": 4}            # struct PacketHeader {int32; int32}: 4-aligned, 8 bytes


class _FB:
    """Front-to-back flatbuffer writer. Slots are (format, value) for inline scalars / structs,
    ('ref', writer) for offsets to children (writer(fb) -> position of the child), or None."""

    def __init__(self):
        self.b = bytearray()

    def pos(self) -> int:
        return len(self.b)

    def pad_to(self, align: int, extra: int = 0) -> None:
        while (len(self.b) + extra) % align:
            self.b.append(0)

    def put(self, fmt: str, *v) -> int:
        p = len(self.b)
        self.b += struct.pack("<" + fmt, *v)
        return p

    def patch(self, at: int, fmt: str, *v) -> None:
        struct.pack_into("<" + fmt, self.b, at, *v)

    def table(self, slots: list) -> int:
        n = len(slots)
        self.pad_to(2)
        vt = self.put(f"{2 + n}H", *([0] * (2 + n)))             # vtable, patched below
        self.pad_to(8)
        tab = self.pos()
        self.put("i", tab - vt)                                   # soffset: vtable = table - soffset
        offsets, refs = [0] * n, []
        for i, s in enumerate(slots):
            if s is None:
                continue
            fmt, val = s
            if fmt == "ref":
                self.pad_to(4)
                offsets[i] = self.pos() - tab
                refs.append((self.put("I", 0), val))
            else:
                self.pad_to(_ALIGN.get(fmt) or struct.calcsize("<" + fmt))
                offsets[i] = self.pos() - tab
                self.put(fmt, *(val if isinstance(val, tuple) else (val,)))
        self.patch(vt, f"{2 + n}H", 4 + 2 * n, self.pos() - tab, *offsets)
        for at, write in refs:                                    # children after the table
            child = write(self)
            self.patch(at, "I", child - at)
        return tab

    def string(self, s: str) -> int:
        raw = s.encode()
        self.pad_to(4)
        p = self.put("I", len(raw))
        self.b += raw + b"\0"
        return p

    def struct_vector(self, raw: bytes, count: int, align: int) -> int:
        self.pad_to(align, extra=4)                               # elements aligned, length just before
        p = self.put("I", count)
        self.b += raw
        return p

    def table_vector(self, writers: list) -> int:
        self.pad_to(4)
        p = self.put("I", len(writers))
        slots = [self.put("I", 0) for _ in writers]
        for at, write in zip(slots, writers):
            self.patch(at, "I", write(self) - at)
        return p


def size_prefixed(ident: bytes, root_slots: list) -> bytes:
    """A size-prefixed flatbuffer: u32 size, u32 root offset (from byte 4), 4-byte identifier, root."""
    fb = _FB()
    fb.put("I", 0)
    root_at = fb.put("I", 0)
    fb.b += ident
    root = fb.table(root_slots)
    fb.pad_to(8)
    fb.patch(root_at, "I", root - root_at)
    fb.patch(0, "I", len(fb.b) - 4)
    return bytes(fb.b)


EVENT_DTYPE = np.dtype({"names": ["t", "x", "y", "on"], "formats": ["<i8", "<i2", "<i2", "u1"],
                        "offsets": [0, 8, 10, 12], "itemsize": 16})


def event_packet(t, x, y, p) -> bytes:
    """EventPacket flatbuffer (size-prefixed, identifier EVTS) holding the given events."""
    ev = np.zeros(len(t), dtype=EVENT_DTYPE)
    ev["t"], ev["x"], ev["y"], ev["on"] = t, x, y, np.asarray(p).astype(bool)
    return size_prefixed(b"EVTS", [("ref", lambda fb: fb.struct_vector(ev.tobytes(), len(ev), 8))])


def trigger_packet(t, source) -> bytes:
    """TriggerPacket flatbuffer (size-prefixed, identifier TRIG): a vector of Trigger tables."""
    def trig(tt, ss):
        return lambda fb: fb.table([("q", int(tt)), ("b", int(ss))])
    return size_prefixed(b"TRIG", [("ref", lambda fb: fb.table_vector([trig(a, b) for a, b in zip(t, source)]))])


def info_node(width: int, height: int, triggers: bool) -> str:
    """The IOHeader's XML, shaped as DV's recorder writes it (a dv root, outInfo, one node per stream)."""
    def stream(sid, ident, desc, name, info=""):
        return (f'<node name="{sid}" path="/mainloop/Recorder/outInfo/{sid}/">'
                f'<attr key="compression" type="string">NONE</attr>'
                f'<attr key="originalModuleName" type="string">capture</attr>'
                f'<attr key="originalOutputName" type="string">{name}</attr>'
                f'<attr key="typeDescription" type="string">{desc}</attr>'
                f'<attr key="typeIdentifier" type="string">{ident}</attr>{info}</node>')
    events = stream(0, "EVTS", "Array of events (polarity ON/OFF).", "events",
                    f'<node name="info" path="/mainloop/Recorder/outInfo/0/info/">'
                    f'<attr key="sizeX" type="int">{width}</attr><attr key="sizeY" type="int">{height}</attr>'
                    f'<attr key="source" type="string">DVS128</attr></node>')
    trig = stream(1, "TRIG", "Array of triggers.", "triggers") if triggers else ""
    return f'<dv version="2.0"><node name="outInfo" path="/mainloop/Recorder/outInfo/">{events}{trig}</node></dv>'


def _io_header(table_position: int, xml: str) -> bytes:
    # compression 0 = NONE, written explicitly (DV forces defaults)
    return size_prefixed(b"IOHE", [("i", 0), ("q", table_position), ("ref", lambda fb: fb.string(xml))])


def _file_data_table(defs: list) -> bytes:
    def one(d):
        off, sid, size, n, t0, t1 = d
        return lambda fb: fb.table([("q", off), ("ii", (sid, size)), ("q", n), ("q", t0), ("q", t1)])
    return size_prefixed(b"FTAB", [("ref", lambda fb: fb.table_vector([one(d) for d in defs]))])


def write_aedat4(path, t, x, y, p, *, packet_size: int = 1000, width: int = 128, height: int = 128,
                 triggers: list | None = None, data_table: bool = True) -> bytes:
    """Write events (t in us, x, y, polarity 0/1) as an AEDAT4 file, `packet_size` events per
    EventPacket on stream 0; optional (t, source) triggers as one TriggerPacket on stream 1 after
    the first event packet; a FileDataTable at the end unless data_table=False (then
    dataTablePosition is -1, as in a recording that was not closed cleanly). Returns the bytes."""
    t, x, y, p = (np.asarray(a) for a in (t, x, y, p))
    xml = info_node(width, height, triggers is not None)
    head_len = len(MAGIC) + len(_io_header(0, xml))               # header size does not depend on the value
    body, defs = bytearray(), []

    def add(sid, fb, n, t0, t1):
        defs.append((head_len + len(body), sid, len(fb), n, t0, t1))
        body.extend(struct.pack("<ii", sid, len(fb)) + fb)

    chunks = [slice(i, i + packet_size) for i in range(0, len(t), packet_size)]
    for k, s in enumerate(chunks):
        add(0, event_packet(t[s], x[s], y[s], p[s]), len(t[s]), int(t[s][0]), int(t[s][-1]))
        if k == 0 and triggers:
            tt, src = zip(*triggers)
            add(1, trigger_packet(tt, src), len(tt), int(tt[0]), int(tt[-1]))
    table_pos = head_len + len(body) if data_table else -1
    raw = MAGIC + _io_header(table_pos, xml) + bytes(body) + (_file_data_table(defs) if data_table else b"")
    assert len(MAGIC + _io_header(table_pos, xml)) == head_len
    Path(path).write_bytes(raw)
    return raw


def read_file_data_table(raw: bytes) -> tuple[int, list]:
    """(dataTablePosition, [(byte offset, stream id, size, elements, t first, t last), ...]) parsed
    back from a file's bytes: an independent check that the offsets written point at the packets."""
    def table_field(buf, tab, i, fmt):
        vt = tab - struct.unpack_from("<i", buf, tab)[0]
        vsize = struct.unpack_from("<H", buf, vt)[0]
        off = struct.unpack_from("<H", buf, vt + 4 + 2 * i)[0] if 4 + 2 * i < vsize else 0
        return None if off == 0 else (tab + off, struct.unpack_from("<" + fmt, buf, tab + off))
    n = struct.unpack_from("<I", raw, len(MAGIC))[0]
    hdr = raw[len(MAGIC) + 4:len(MAGIC) + 4 + n]
    root = struct.unpack_from("<I", hdr, 0)[0]
    assert hdr[4:8] == b"IOHE"
    pos = table_field(hdr, root, 1, "q")[1][0]
    if pos < 0:
        return pos, []
    ft = raw[pos + 4:]                                            # past the size prefix
    assert ft[4:8] == b"FTAB"
    root = struct.unpack_from("<I", ft, 0)[0]
    at, (voff,) = table_field(ft, root, 0, "I")
    vec = at + voff
    out = []
    for k in range(struct.unpack_from("<I", ft, vec)[0]):
        slot = vec + 4 + 4 * k
        d = slot + struct.unpack_from("<I", ft, slot)[0]
        off = table_field(ft, d, 0, "q")[1][0]
        sid, size = table_field(ft, d, 1, "ii")[1]
        out.append((off, sid, size, table_field(ft, d, 2, "q")[1][0], table_field(ft, d, 3, "q")[1][0],
                    table_field(ft, d, 4, "q")[1][0]))
    return pos, out
