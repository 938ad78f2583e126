"""Spark Structured Streaming as the trigger of `opencem stream`: a file stream over a spool folder whose
micro-batches are handed to a Python function on the driver.

Spark tracks which files each of its batches holds in its own checkpoint folder, and gives a batch that was
interrupted again under the same id with the same files; the function receives that id and keeps its own
record of the ids it has committed (see :mod:`opencem.stream.spark`), so a batch counts once.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from urllib.parse import unquote, urlparse

# (file name, its bytes, its modification time in epoch seconds)
SpoolFile = tuple[str, bytes, float]


def run_spool_stream(folder: Path, on_batch: Callable[[int, list[SpoolFile]], None], checkpoint: Path,
                     master: str = "local[2]", files_per_batch: int | None = None) -> None:
    """Process every file now in ``folder`` (``*.parquet``, hidden ones excepted) as Spark micro-batches
    (``availableNow``: at most ``files_per_batch`` files each), calling ``on_batch(batch_id, files)`` for each,
    and return when they are done."""
    from pyspark.sql import SparkSession

    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    builder = SparkSession.builder.appName("opencem-stream").config("spark.ui.enabled", "false") \
        .config("spark.sql.shuffle.partitions", "2")
    if master:
        builder = builder.master(master)
    spark = builder.getOrCreate()
    from pyspark.sql.types import BinaryType, LongType, StringType, StructField, StructType, TimestampType

    schema = StructType([StructField("path", StringType()), StructField("modificationTime", TimestampType()),
                         StructField("length", LongType()), StructField("content", BinaryType())])
    reader = spark.readStream.format("binaryFile").schema(schema).option("pathGlobFilter", "[!.]*.parquet")
    if files_per_batch:
        reader = reader.option("maxFilesPerTrigger", str(files_per_batch))
    stream = reader.load(str(folder))

    def each(df, batch_id: int) -> None:
        rows = df.select("path", "content", "modificationTime").collect()
        on_batch(int(batch_id), [(Path(unquote(urlparse(r["path"]).path)).name, bytes(r["content"]),
                                  r["modificationTime"].timestamp()) for r in rows])

    query = stream.writeStream.foreachBatch(each).option("checkpointLocation", str(checkpoint)) \
        .trigger(availableNow=True).start()
    query.awaitTermination()
    err = query.exception()
    if err is not None:
        raise RuntimeError(f"the Spark stream failed: {err}")
