"""Where a big text source is cut into partitions: at line starts that are record starts.

A JSON Lines record is one line, so every line start is one. A CSV record may span
lines (a newline inside a quoted field): RFC 4180 quoting doubles a quote inside a quoted
field, so a newline is inside a field exactly when an odd number of quote characters come
before it in the file. The scan counts them a block at a time (C speed, no parsing); a
file that breaks the rule (a quote inside an unquoted field) could be cut inside a
record, which the partition before the cut notices (it reads past the cut) and fails
the import rather than guess (activities/importing.py).
"""

from typing import BinaryIO

_BLOCK = 1 << 20


def line_cuts(stream: BinaryIO, size: int, every: int, quote: bytes | None) -> list[int]:
    """Offsets, about `every` bytes apart, of line starts after a newline byte (an
    ASCII-compatible encoding) outside quotes (`quote`: the CSV quote byte; None for
    JSON Lines); none at the start or the end of the file."""
    cuts: list[int] = []
    target = every
    quotes = 0  # quote bytes before `counted`
    block_start = 0
    stream.seek(0)
    while target < size and (block := stream.read(_BLOCK)):
        block_end = block_start + len(block)
        counted = 0  # within the block
        while target < block_end:
            newline = block.find(b"\n", target - block_start)
            if newline == -1:
                target = block_end
                break
            if quote is not None:
                quotes += block.count(quote, counted, newline)
                counted = newline
            cut = block_start + newline + 1
            if quotes % 2 == 0 and cut < size:
                cuts.append(cut)
                target = cut + every
            else:
                target = cut
        if quote is not None:
            quotes += block.count(quote, counted)
        block_start = block_end
    stream.seek(0)
    return cuts
