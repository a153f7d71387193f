"""An NVMe drive's PCIe link: two serial directions that carry TLPs back to back.

Why not :class:`archsim.cxl.link.Link`: that link carries CXL.mem messages in 68 B / 256 B flits (64 B lines,
PCIe 5 and 6 only); an NVMe drive moves PCIe transaction-layer packets (TLPs) at PCIe 3, 4 or 5 rates, whose
payloads are up to Max_Payload_Size bytes each, and its commands and completions are NVMe queue entries. So the
link is modelled here, in the same manner (exact serialisation, then a fixed latency):

* a message of ``n`` payload bytes is ``ceil(n / max_payload_bytes)`` TLPs (at least one), each adding
  ``tlp_overhead_bytes`` on the wire; the wire carries ``n + TLPs x overhead`` bytes at
  ``ps_per_byte = 8000 / (GT/s x lanes x 128/130)``;
* each direction is one serial resource: messages go back to back in the order they are sent, a message waits
  for the ones before it; the receiver has it when its last byte is through (rounded up to a whole ps) plus
  ``latency_ns``.

Time inside a direction is kept in integer units of ``1/scale`` ps with ``scale`` the denominator of
``ps_per_byte``, so back-to-back messages accumulate no rounding; only delivery times are rounded up.

Abstracted away: DLLPs (Ack/Nak, flow-control updates) and their credits, the doorbell write and the read
request that fetches a submission-queue entry (their time is the drive's controller latency), MSI-X interrupts,
read-completion boundaries, link power states, retimers.
"""

from __future__ import annotations

from archsim.storage.spec import PCIeLinkSpec

__all__ = ["PCIeWire", "PCIeLink", "SQE_BYTES", "CQE_BYTES"]

SQE_BYTES = 64  #: an NVMe submission-queue entry (NVM Express Base Specification, §4.2: 64 bytes)
CQE_BYTES = 16  #: an NVMe completion-queue entry (§4.6: 16 bytes)


class PCIeWire:
    """One direction: messages back to back; counts messages, TLPs, wire bytes and payload bytes."""

    __slots__ = ("scale", "byte_u", "free_u", "messages", "tlps", "wire_bytes", "payload_bytes", "data_wire",
                 "queue_wire")

    def __init__(self, spec: PCIeLinkSpec) -> None:
        ppb = spec.ps_per_byte
        self.scale = ppb.denominator
        self.byte_u = ppb.numerator  # units (1/scale ps) per byte
        self.free_u = 0
        self.messages = 0
        self.tlps = 0
        self.wire_bytes = 0
        self.payload_bytes = 0
        self.data_wire = 0  # wire bytes of data TLPs
        self.queue_wire = 0  # wire bytes of queue entries (commands, completions)

    def send(self, now_ps: int, wire_bytes: int, payload: int, tlps: int, data: bool) -> int:
        """Put one message of ``wire_bytes`` on the wire at ``now_ps`` (nondecreasing over calls); returns the
        ps at which its last byte is through."""
        a = now_ps * self.scale
        start = a if a > self.free_u else self.free_u
        end = start + wire_bytes * self.byte_u
        self.free_u = end
        self.messages += 1
        self.tlps += tlps
        self.wire_bytes += wire_bytes
        self.payload_bytes += payload
        if data:
            self.data_wire += wire_bytes
        else:
            self.queue_wire += wire_bytes
        return -(-end // self.scale)

    def busy_ps(self) -> float:
        return self.wire_bytes * self.byte_u / self.scale


class PCIeLink:
    """The two directions (``down``: host to drive, ``up``: drive to host) and the TLP arithmetic."""

    def __init__(self, spec: PCIeLinkSpec) -> None:
        self.spec = spec
        self.mps = spec.max_payload_bytes
        self.overhead = spec.tlp_overhead_bytes
        self.latency_ps = int(round(spec.latency_ns * 1000))
        self.down = PCIeWire(spec)
        self.up = PCIeWire(spec)

    def tlps(self, payload: int) -> int:
        """TLPs that carry ``payload`` bytes (at least one)."""
        return max(1, -(-payload // self.mps))

    def wire_bytes(self, payload: int) -> int:
        """Bytes on the wire for a message of ``payload`` bytes."""
        return payload + self.tlps(payload) * self.overhead

    def serialisation_ps(self, payload: int) -> int:
        """ps one message of ``payload`` bytes takes alone on an idle wire (rounded up)."""
        return -(-self.wire_bytes(payload) * self.down.byte_u // self.down.scale)

    def send(self, wire: PCIeWire, now_ps: int, payload: int, data: bool) -> int:
        """Send a message of ``payload`` bytes on ``wire``; returns when the far end has it (latency included)."""
        n = self.tlps(payload)
        return wire.send(now_ps, payload + n * self.overhead, payload, n, data) + self.latency_ps
