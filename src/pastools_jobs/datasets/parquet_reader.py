"""Parquet imports in bounded memory, whatever the file's encodings.

A Parquet file can stand for far more than its size: a dictionary-encoded column repeats
one long string on every row (a 1 KiB file, gigabytes of rows), and a compressed page
can inflate a thousandfold. So string columns are read as Arrow dictionaries (Arrow
never expands the repeats), each row's decoded size is measured on the Arrow arrays
before any Python object is made, and rows become documents in slices that fit what is
left of the batch's byte budget. A column chunk that would inflate past that budget and
more than `INFLATION_LIMIT` times its stored size is refused from the footer, unread.

A big file is imported in partitions of whole row groups (`row_group_cuts`), each read
from its first row to its last: the footer says where each row group starts.
"""

import json
import os
from collections.abc import Iterator, Mapping
from typing import Any, BinaryIO

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pastools_jobs.datasets.coercion import ColumnType
from pastools_jobs.datasets.reading import (
    BATCH_LIMIT_SETTING,
    RECORD_LIMIT_SETTING,
    Batch,
    Position,
    ReadLimits,
    RowError,
    SourceUnusable,
    cell_error,
    describe_size,
    record_key,
)
from pastools_jobs.datasets.shaping import CellError, shape_json
from pastools_jobs.domain import StorageMisconfigured, StorageUnavailable

INFLATION_LIMIT = 100
"""Apache POI's zip-bomb guard (a 1% minimum inflate ratio): Parquet's own encodings take
out the repeats, so real data seldom compresses tenfold on top of them."""
LEVEL_BYTES = 8
"""What Arrow decodes per value of a repeated column besides the value (repetition and
definition levels, list offsets): a run of a billion empty values is a few bytes on disk."""
_IO_BUFFER = 1 << 20
"""Column chunks are read through a buffer this size, not whole into memory."""
_DICTIONARY_TYPES = {"STRING", "NONE", "ENUM", "JSON", "BSON"}
"""The logical types of the byte-array columns that Arrow can read as dictionaries."""


def parquet_rows(stream: BinaryIO) -> int:
    """Rows of a Parquet file, from its footer."""
    try:
        return int(pq.read_metadata(stream).num_rows)
    except (StorageUnavailable, StorageMisconfigured):
        raise  # an outage, retried: not a fault of the file
    except Exception as error:
        raise SourceUnusable(f"not a readable Parquet file ({error})") from None


def row_group_cuts(stream: BinaryIO, every: int, key_column: str) -> list[int]:
    """The row numbers that bound a file's partitions of whole row groups (0, the cuts,
    its rows), each partition holding `every` bytes of data or more but the last: the row
    groups' sizes uncompressed, as the footer gives them (what a text file's bytes are).
    Empty for a file of one row group or less data, or without the key column, or one that
    cannot be read (the one activity fails on it the usual way).

    The sizes are the writer's word: a footer that claims more than `INFLATION_LIMIT` times
    the file's bytes (forged, or data that compresses past what real data does) gets no
    more partitions than that much data would: never one per row group of a file that is
    mostly footer, each a workflow's activity."""
    try:
        metadata = pq.read_metadata(stream)
        names = metadata.schema.to_arrow_schema().names
        most = stream.seek(0, os.SEEK_END) * INFLATION_LIMIT // every
    except (StorageUnavailable, StorageMisconfigured):
        raise
    except Exception:
        return []
    if key_column not in names:
        return []
    cuts: list[int] = []
    rows = size = 0
    for index in range(metadata.num_row_groups):
        group = metadata.row_group(index)
        rows += group.num_rows
        size += group.total_byte_size
        if size >= every and rows > (cuts[-1] if cuts else 0) and len(cuts) < most:
            cuts.append(rows)
            size = 0
    cuts = [cut for cut in cuts if cut < rows]
    return [0, *cuts, rows] if cuts else []


def parquet_batches(
    stream: BinaryIO,
    start: Position,
    key_column: str | None,
    limits: ReadLimits,
    declared: Mapping[str, ColumnType] | None = None,
    end_row: int | None = None,
) -> Iterator[Batch]:
    """From the row after `start.rows` to row `end_row` (a row group's last), or the end."""
    source = _open(stream)
    if key_column is not None and key_column not in source.schema_arrow.names:
        raise SourceUnusable(f"the key column '{key_column}' is not in the file")
    _check_footer(source.metadata, limits)
    end = _rows_of_groups(source.metadata) if end_row is None else end_row
    try:
        yield from _batches(source, (start.rows, end), key_column, limits, declared or {})
    except (OSError, pa.ArrowException) as error:  # a corrupt page: no retry will read it
        raise SourceUnusable(f"not a readable Parquet file ({error})") from None


def _rows_of_groups(metadata: pq.FileMetaData) -> int:
    """The rows the row groups hold: what is read, whatever the file's own count says (a
    footer that understates it must not cut the reading short)."""
    return sum(metadata.row_group(i).num_rows for i in range(metadata.num_row_groups))


def _batches(
    source: pq.ParquetFile,
    rows: tuple[int, int],
    key_column: str | None,
    limits: ReadLimits,
    declared: Mapping[str, ColumnType],
) -> Iterator[Batch]:
    """The rows after `rows[0]` up to `rows[1]`."""
    dense = pa.schema([field.with_type(_dense(field.type)) for field in source.schema_arrow])
    batch = Batch()
    skip, end = rows
    for first, records in _record_batches(source, skip, end, limits):
        sizes = row_sizes(records)
        _check_rows(sizes, first, limits)
        done = 0
        while done < len(sizes):
            count = _fitting(sizes, done, batch, limits)
            documents = records.slice(done, count).cast(dense).to_pylist()
            _add_rows(batch, documents, first + done, key_column, declared)
            done += count
            if batch.is_full(limits):
                batch.end = Position(0, first + done - 1, first + done - 1)
                yield batch
                batch = Batch()
    batch.end = Position(0, end, end)
    yield batch


def _open(stream: BinaryIO) -> pq.ParquetFile:
    """Byte-array columns as dictionaries, and column chunks read through a buffer."""
    try:
        metadata = pq.read_metadata(stream)
        schema = metadata.schema
        columns = [schema.column(index) for index in range(len(schema))]
        as_dictionaries = [
            column.path
            for column in columns
            if column.physical_type == "BYTE_ARRAY"
            and column.logical_type.type in _DICTIONARY_TYPES
        ]
        return pq.ParquetFile(
            stream,
            metadata=metadata,
            read_dictionary=as_dictionaries,
            pre_buffer=False,
            buffer_size=_IO_BUFFER,
        )
    except (StorageUnavailable, StorageMisconfigured):
        raise  # an outage, retried: not a fault of the file
    except Exception as error:
        raise SourceUnusable(f"not a readable Parquet file ({error})") from None


def _check_footer(metadata: pq.FileMetaData, limits: ReadLimits) -> None:
    """Refuse a column chunk whose pages would inflate past the batch budget and more
    than `INFLATION_LIMIT` times what it stores: Arrow decompresses a page whole."""
    repeated = [
        metadata.schema.column(i).max_repetition_level > 0 for i in range(len(metadata.schema))
    ]
    for group_index in range(metadata.num_row_groups):
        group = metadata.row_group(group_index)
        if group.num_rows < 0:
            raise SourceUnusable(f"row group {group_index + 1} claims {group.num_rows} rows")
        for index in range(group.num_columns):
            column = group.column(index)
            decoded = column.total_uncompressed_size
            if repeated[index]:
                decoded += LEVEL_BYTES * column.num_values
            stored = column.total_compressed_size
            if decoded > limits.batch_bytes and decoded > INFLATION_LIMIT * stored:
                raise SourceUnusable(
                    f"row group {group_index + 1}, column '{column.path_in_schema}' would "
                    f"decode to {describe_size(decoded)} from {describe_size(stored)}: more "
                    f"than {INFLATION_LIMIT} times its size, past the "
                    f"{describe_size(limits.batch_bytes)} batch limit ({BATCH_LIMIT_SETTING})"
                )


def _record_batches(
    source: pq.ParquetFile, skip: int, end: int, limits: ReadLimits
) -> Iterator[tuple[int, pa.RecordBatch]]:
    """Arrow batches, each with the number of its first row, from row `skip + 1` on, of
    the row groups that start at row `end` or before: whole row groups before and after
    are passed over unread."""
    first = 1
    for group_index in range(source.metadata.num_row_groups):
        group = source.metadata.row_group(group_index)
        if first > end:
            return
        if first + group.num_rows <= skip + 1:
            first += group.num_rows
            continue
        size = _rows_per_read(group, limits)
        read = 0
        for records in source.iter_batches(batch_size=size, row_groups=[group_index]):
            unwanted = min(max(skip + 1 - first, 0), records.num_rows)
            if unwanted < records.num_rows:
                yield first + unwanted, records.slice(unwanted)
            first += records.num_rows
            read += records.num_rows
        if read != group.num_rows:
            # The rows are numbered, and the partitions cut, by the footer's counts.
            raise SourceUnusable(
                f"row group {group_index + 1} holds {read} rows, its footer says {group.num_rows}"
            )


def _rows_per_read(group: pq.RowGroupMetaData, limits: ReadLimits) -> int:
    """As many rows as the budget holds at the row group's average size, so that fat
    rows are not decoded a hundred thousand at a time."""
    average = max(int(group.total_byte_size) // max(int(group.num_rows), 1), 1)
    return max(1, min(limits.batch_rows, limits.batch_bytes // average))


def row_sizes(records: pa.RecordBatch) -> list[int]:
    """Each row's decoded size: its strings' and binaries' lengths, the other values'
    widths, counted on the Arrow arrays (a dictionary's entry once per row using it)."""
    total = pa.array([0] * records.num_rows, pa.int64())
    for column in records.columns:
        total = pc.add(total, _value_sizes(column))
    return [int(size) for size in total.to_pylist()]


def _value_sizes(array: pa.Array) -> pa.Array:
    kind = array.type
    if isinstance(array, pa.ExtensionArray):
        return _value_sizes(array.storage)
    if pa.types.is_dictionary(kind):
        sizes = pc.take(_value_sizes(array.dictionary), array.indices)
    elif _is_binary(kind):
        sizes = pc.binary_length(array).cast(pa.int64())
    elif pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_map(kind):
        sizes = _span_sums(_value_sizes(array.values), array.offsets)
    elif pa.types.is_fixed_size_list(kind):
        ends = pa.array(range(0, (len(array) + 1) * kind.list_size, kind.list_size), pa.int64())
        sizes = _span_sums(_value_sizes(array.flatten()), ends)
    elif pa.types.is_struct(kind):
        sizes = pa.array([0] * len(array), pa.int64())
        for field in array.flatten():
            sizes = pc.add(sizes, _value_sizes(field))
    else:
        width = max(kind.bit_width // 8, 1) if kind.bit_width else 1
        sizes = pa.array([width] * len(array), pa.int64())
    return pc.if_else(pc.is_valid(array), sizes, 0)


_BINARY_TYPES = (
    pa.types.is_string,
    pa.types.is_large_string,
    pa.types.is_binary,
    pa.types.is_large_binary,
    pa.types.is_fixed_size_binary,
    pa.types.is_string_view,
    pa.types.is_binary_view,
)


def _is_binary(kind: pa.DataType) -> bool:
    return any(is_type(kind) for is_type in _BINARY_TYPES)


def _span_sums(sizes: pa.Array, offsets: pa.Array) -> pa.Array:
    """For each [offsets[i], offsets[i + 1]) span of `sizes`, its sum."""
    running = pa.concat_arrays(
        [pa.array([0], pa.int64()), pc.cumulative_sum(sizes).cast(pa.int64())]
    )
    return pc.subtract(pc.take(running, offsets[1:]), pc.take(running, offsets[:-1]))


def _dense(kind: pa.DataType) -> pa.DataType:
    """The type with its dictionaries decoded: Python values are made much faster from it."""
    if pa.types.is_dictionary(kind):
        return _dense(kind.value_type)
    if pa.types.is_struct(kind):
        return pa.struct([field.with_type(_dense(field.type)) for field in kind])
    if pa.types.is_map(kind):
        key, item = kind.key_field, kind.item_field
        return pa.map_(key.with_type(_dense(key.type)), item.with_type(_dense(item.type)))
    if pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind):
        value = kind.value_field.with_type(_dense(kind.value_type))
        if pa.types.is_large_list(kind):
            return pa.large_list(value)
        if pa.types.is_fixed_size_list(kind):
            return pa.list_(value, kind.list_size)
        return pa.list_(value)
    return kind


def _check_rows(sizes: list[int], first: int, limits: ReadLimits) -> None:
    if not sizes or max(sizes) <= limits.record_bytes:
        return
    for index, size in enumerate(sizes):
        if size > limits.record_bytes:
            raise SourceUnusable(
                f"row {first + index} is larger than the {describe_size(limits.record_bytes)} "
                f"record limit ({RECORD_LIMIT_SETTING}): {describe_size(size)} decoded"
            )


def _fitting(sizes: list[int], start: int, batch: Batch, limits: ReadLimits) -> int:
    """How many of the rows from `start` on the batch has room for: one at least."""
    rows_left = limits.batch_rows - len(batch.rows) - len(batch.errors)
    bytes_left = limits.batch_bytes - batch.size
    count = 0
    for size in sizes[start : start + rows_left]:
        bytes_left -= size
        if count and bytes_left < 0:
            break
        count += 1
    return max(count, 1)


def _add_rows(
    batch: Batch,
    documents: list[dict[str, Any]],
    first: int,
    key_column: str | None,
    declared: Mapping[str, ColumnType],
) -> None:
    for index, document in enumerate(documents, start=first):
        if declared:
            try:
                shape_json(document, declared)
            except CellError as error:
                batch.errors.append(cell_error(index, error))
                continue
        key = record_key(document.get(key_column) if key_column else None, key_column, index)
        if key is None:
            batch.errors.append(RowError(index, f"the key column '{key_column}' is empty"))
            continue
        try:
            encoded = _jsonable(document)
        except ValueError:
            batch.errors.append(RowError(index, "a NaN or infinite number, which JSON has not"))
            continue
        batch.add(index, key, encoded)


_jsonable = json.JSONEncoder(
    ensure_ascii=False, separators=(",", ":"), default=str, allow_nan=False
).encode
"""Parquet values that JSON has no type for (dates, decimals, bytes) as strings; one
encoder for all rows, as json.dumps with options would build one per call. A float
NaN or infinity raises ValueError: PostgreSQL's jsonb refuses them."""
