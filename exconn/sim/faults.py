"""Fault payloads injected on purpose; kept apart so new faults have an obvious home."""


def malformed_frame(stream: str, combined: bool) -> str:
    """Truncated JSON that looks like the start of a real event on `stream`."""
    if combined:
        return '{"stream": "' + stream + '", "data": {bad json'
    event = "depthUpdate" if "@depth" in stream else "trade"
    return '{"e": "' + event + '", "E": {bad json'
