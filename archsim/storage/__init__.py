"""Storage: an NVMe SSD (PCIe link, NVMe queues, controller, NAND channels and dies; component kind ``ssd``).

docs/storage.md describes the model, what it leaves out, and the shipped presets
(``archsim/config/presets/storage/``).
"""

from archsim.storage.spec import PCIeLinkSpec, SSDSpec
from archsim.storage.ssd import SSD

__all__ = ["SSD", "SSDSpec", "PCIeLinkSpec"]
