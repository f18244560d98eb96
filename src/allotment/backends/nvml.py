"""This host's GPUs through NVML (nvidia-ml-py's pynvml): model, memory, health and utilisation.

pynvml loads the driver's libnvidia-ml.so.1 when first initialised; a host without the driver (or without the
package) has no GPUs, which is not an error. NVML is initialised once per process and kept: the idle sampling asks
for utilisation every scheduler cycle while a job holds GPUs, and initialising costs far more than a query. A failed
query re-initialises on the next read.

Health: a device is unhealthy when NVML cannot query it (NVML_ERROR_GPU_IS_LOST: fallen off the bus, and the like)
or when ECC page retirement is pending (its memory has errors that only a reset clears). Devices without ECC do
not support that query, which says nothing about them. An unhealthy device stays in the inventory, so the scheduler
stops placing jobs on it rather than forgetting it.
"""

from __future__ import annotations

import logging
import threading

from allotment.backends.base import DeviceInfo

log = logging.getLogger("allotment.backends.local")

_lock = threading.Lock()
_ready = False


def _init(pynvml) -> bool:
    global _ready
    if not _ready:
        try:
            pynvml.nvmlInit()
        except pynvml.NVMLError as exc:
            log.debug("NVML unavailable: %s", exc)
            return False
        _ready = True
    return True


def _forget(pynvml) -> None:
    global _ready
    if _ready:
        try:
            pynvml.nvmlShutdown()
        except pynvml.NVMLError:
            pass
        _ready = False


def _device(pynvml, index: int) -> DeviceInfo:
    handle = pynvml.nvmlDeviceGetHandleByIndex(index)
    name = pynvml.nvmlDeviceGetName(handle)
    model = name.decode(errors="replace") if isinstance(name, bytes) else str(name)
    try:
        memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
        utilisation = pynvml.nvmlDeviceGetUtilizationRates(handle)
    except pynvml.NVMLError as exc:
        log.warning("GPU %s (%s) cannot be queried: %s", index, model, exc)
        return DeviceInfo(index=index, model=model, health="unhealthy")
    health = "healthy"
    try:
        if pynvml.nvmlDeviceGetRetiredPagesPendingStatus(handle):
            health = "unhealthy"
    except pynvml.NVMLError_NotSupported:
        pass
    except pynvml.NVMLError as exc:
        log.warning("GPU %s (%s): its ECC state cannot be read: %s", index, model, exc)
        health = "unhealthy"
    return DeviceInfo(index=index, model=model, memory_mib=int(memory.total) // (1024 * 1024), health=health,
                      utilisation=float(utilisation.gpu))  # percent, as inventory keeps it


def read_gpus() -> tuple[DeviceInfo, ...]:
    """Every GPU NVML reports, in its index order; () without NVML."""
    try:
        import pynvml
    except ImportError:
        return ()
    with _lock:
        if not _init(pynvml):
            return ()
        try:
            count = pynvml.nvmlDeviceGetCount()
        except pynvml.NVMLError as exc:
            log.warning("NVML: cannot count the GPUs: %s", exc)
            _forget(pynvml)
            return ()
        devices = []
        for index in range(count):
            try:
                devices.append(_device(pynvml, index))
            except pynvml.NVMLError as exc:  # not even its handle or name: keep it, unhealthy
                log.warning("GPU %s cannot be queried: %s", index, exc)
                devices.append(DeviceInfo(index=index, model="unknown", health="unhealthy"))
        return tuple(devices)


def minor_numbers() -> dict[int, int]:
    """GPU index -> the minor of its /dev/nvidiaN node (nvmlDeviceGetMinorNumber), for the devices cgroup
    (backends/cgroups.py). A GPU NVML cannot say this of (or a stand-in NVML without the call) is left out: its minor
    is taken to be its index, which is what the driver gives on ordinary hosts."""
    try:
        import pynvml
    except ImportError:
        return {}
    minors: dict[int, int] = {}
    with _lock:
        if not _init(pynvml):
            return {}
        try:
            count = pynvml.nvmlDeviceGetCount()
        except pynvml.NVMLError:
            return {}
        for index in range(count):
            try:
                minors[index] = int(pynvml.nvmlDeviceGetMinorNumber(pynvml.nvmlDeviceGetHandleByIndex(index)))
            except pynvml.NVMLError:
                continue
    return minors
