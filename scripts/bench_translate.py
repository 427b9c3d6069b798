"""The translator's cost per streamed event, against an untranslated stream.

A 2,000-event Anthropic stream (one event per chunk, as upstreams send them)
goes through the same-format tap the gateway uses when client and upstream
agree, and through the translators to OpenAI, Gemini and Responses clients;
an OpenAI Chat Completions stream goes through the translator to Anthropic
(the direction of `make bench`'s translated row). All in this process, in
the same run, so the ratios are meaningful on a noisy machine.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from quotio_core.formats.sse import encode_event  # noqa: E402
from quotio_core.formats.streamtap import StreamTap  # noqa: E402
from quotio_core.formats import StreamTranslator  # noqa: E402

EVENTS = 2000


def anthropic_stream(n_deltas: int) -> list[bytes]:
    def ev(name: str, data: dict) -> bytes:
        return encode_event(json.dumps(data, separators=(",", ":")), name)

    usage = {"input_tokens": 25, "output_tokens": 1}
    chunks = [
        ev("message_start", {"type": "message_start", "message": {
            "id": "msg_1", "type": "message", "role": "assistant", "model": "m", "content": [],
            "stop_reason": None, "stop_sequence": None, "usage": usage}}),
        ev("content_block_start", {"type": "content_block_start", "index": 0,
                                   "content_block": {"type": "text", "text": ""}}),
    ]
    chunks += [
        ev("content_block_delta", {"type": "content_block_delta", "index": 0,
                                   "delta": {"type": "text_delta", "text": f"word{i} "}})
        for i in range(n_deltas)
    ]
    chunks += [
        ev("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ev("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                             "usage": {"output_tokens": n_deltas}}),
        ev("message_stop", {"type": "message_stop"}),
    ]
    return chunks


def openai_stream(n_deltas: int) -> list[bytes]:
    """What an OpenAI Chat Completions upstream sends (the translated row of `make bench`)."""
    def ev(choices: list, **extra) -> bytes:
        data = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m",
                "choices": choices, **extra}
        return encode_event(json.dumps(data, separators=(",", ":")))

    def choice(delta: dict, finish: str | None = None) -> dict:
        return {"index": 0, "delta": delta, "finish_reason": finish}

    usage = {"prompt_tokens": 25, "completion_tokens": n_deltas, "total_tokens": 25 + n_deltas}
    return [
        ev([choice({"role": "assistant", "content": ""})]),
        *(ev([choice({"content": f"word{i} "})]) for i in range(n_deltas)),
        ev([choice({}, "stop")]),
        ev([], usage=usage),
        encode_event("[DONE]"),
    ]  # fmt: skip


def run(make, chunks: list[bytes]) -> tuple[list[float], float]:
    """Per-chunk seconds, and the whole stream's seconds."""
    fn = make()
    per_chunk = []
    start = time.perf_counter()
    for chunk in chunks:
        t = time.perf_counter()
        fn(chunk)
        per_chunk.append(time.perf_counter() - t)
    fn(b"")
    return per_chunk, time.perf_counter() - start


def main(repeat: int = 7) -> list[str]:
    anthropic, openai = anthropic_stream(EVENTS - 5), openai_stream(EVENTS - 4)
    # name -> (translator factory, upstream stream); "a -> b": upstream a, client b.
    makers = {
        "untranslated (anthropic tap)": (lambda: StreamTap("anthropic"), anthropic),
        "translated (anthropic -> openai)": (lambda: StreamTranslator("anthropic", "openai", "m", True), anthropic),
        "translated (anthropic -> gemini)": (lambda: StreamTranslator("anthropic", "gemini", "m"), anthropic),
        "translated (anthropic -> responses)": (lambda: StreamTranslator("anthropic", "responses", "m"), anthropic),
        "translated (openai -> anthropic)": (lambda: StreamTranslator("openai", "anthropic", "m"), openai),
    }
    for make, chunks in makers.values():  # warm-up: imports, caches
        run(make, chunks)
    # Interleaved repeats, so machine drift hits every row alike; medians kept.
    samples: dict[str, list[tuple[float, float, float]]] = {n: [] for n in makers}
    for _ in range(repeat):
        for name, (make, chunks) in makers.items():
            per_chunk, total = run(make, chunks)
            per_chunk.sort()
            samples[name].append((per_chunk[len(per_chunk) // 2], per_chunk[int(len(per_chunk) * 0.99)], total))
    base = statistics.median(s[2] for s in samples["untranslated (anthropic tap)"])
    lines = [
        f"translated-stream micro-benchmark: {EVENTS} events, one per chunk, medians of {repeat} runs",
        f"{'stream':38} {'per-chunk p50 us':>16} {'p99 us':>8} {'events/s':>10} {'x untranslated':>15}",
    ]
    for name in makers:
        p50 = statistics.median(s[0] for s in samples[name]) * 1e6
        p99 = statistics.median(s[1] for s in samples[name]) * 1e6
        total = statistics.median(s[2] for s in samples[name])
        lines.append(f"{name:38} {p50:16.1f} {p99:8.1f} {EVENTS / total:10.0f} {total / base:15.2f}")
    lines.append(
        "per-chunk time is the latency the translator adds to each event (the first client byte"
        " included); events/s is one core's throughput for a single stream."
    )
    return lines


if __name__ == "__main__":
    print("\n".join(main()))
