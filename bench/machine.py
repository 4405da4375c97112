"""What a benchmark ran on (govfacts.machine): CPU model, SIMD flags, cores."""
from govfacts.machine import cpu_info  # noqa: F401
