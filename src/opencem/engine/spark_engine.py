"""Apache Spark engine (PySpark 4). SQL is written in DuckDB's dialect and translated with ``transpile``.

The SparkSession is created lazily on first use. Engines in one Python process share one SparkContext
(Spark allows one per JVM); each engine gets its own ``newSession()`` so temp views and SQL settings do
not leak between engines. The context is stopped when the last engine that started it is closed;
a session that already existed (e.g. a notebook's) is reused and never stopped.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
import threading
import warnings
from pathlib import Path

import pyarrow as pa

from .base import Engine, Params, StepError, check_name, normalise_arrow, quote_ident, transpile
from .duckdb_engine import machine_memory
from .files import as_path_list, atomic_dir, hive_base_path

# Settings every session gets (SQL settings are also applied to reused sessions).
SQL_CONF = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.sql.execution.arrow.pyspark.fallback.enabled": "false",
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",  # not INT96
    "spark.sql.sources.partitionColumnTypeInference.enabled": "true",
}
# Settings that only take effect when the SparkContext is started.
CONTEXT_CONF = {
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.catalogImplementation": "in-memory",
    # Spark creates the warehouse folder at start; keep it out of the current directory
    "spark.sql.warehouse.dir": os.path.join(tempfile.gettempdir(), f"opencem-spark-warehouse-{os.getuid()}"),
}
# Extra settings for local mode (tests, laptops). The driver is the whole of Spark there; its heap is
# sized from the machine (LOCAL_DRIVER_MEMORY_SHARE of it) unless spark.driver.memory is given: the default
# 1 GB ends in an OutOfMemoryError in the twin's evidence on a few days of 3,000 subscribers.
LOCAL_DRIVER_MEMORY_SHARE = 0.25
LOCAL_CONF = {
    "spark.sql.shuffle.partitions": "4",
    "spark.default.parallelism": "4",
    "spark.driver.host": "127.0.0.1",
    "spark.driver.bindAddress": "127.0.0.1",
}

_lock = threading.Lock()
_state = {"users": 0, "owned": None}  # engines using the shared context; the root session we started


def _q(name: str) -> str:
    return quote_ident(name, "`")


def _errors():
    """Exception types raised by PySpark for SQL and execution errors."""
    from py4j.protocol import Py4JError
    from pyspark.errors import PySparkException

    return (PySparkException, Py4JError)


class SparkEngine(Engine):
    """Spark via PySpark. ``master``: ``local[2]`` (default), ``local[*]`` or a cluster URL such as
    ``spark://host:7077``. ``conf`` adds or overrides Spark settings.

    Paths given to ``register_parquet`` and ``write_parquet`` must be visible to the driver and every
    executor (local mode, or a shared file system on a cluster); URLs such as ``s3a://`` are passed to
    Spark unchanged for reading. ``write_parquet`` swaps folders with local renames, so its path must be
    a POSIX path on a file system the driver sees.
    """

    name = "spark"

    def __init__(self, master: str = "local[2]", app_name: str = "opencem", conf: dict | None = None):
        self.master = master
        self.app_name = app_name
        self.conf = dict(conf or {})
        self._spark = None
        self._cached: dict[str, object] = {}  # name (lower) -> cached DataFrame
        self._views: set[str] = set()
        self._closed = False

    # -- session ---------------------------------------------------------------------------------

    @property
    def spark(self):
        """The engine's SparkSession (created on first use)."""
        if self._spark is None:
            if self._closed:
                raise RuntimeError("this SparkEngine is closed")
            self._spark = self._start()
        return self._spark

    def _start(self):
        from pyspark import SparkContext
        from pyspark.sql import SparkSession

        # PySpark logs every SQL error (with the full JVM trace) before raising it; we raise StepError.
        for logger in ("SQLQueryContextLogger", "DataFrameQueryContextLogger"):
            logging.getLogger(logger).setLevel(logging.CRITICAL)
        with _lock:
            existing = SparkContext._active_spark_context is not None
            builder = SparkSession.builder.appName(self.app_name)
            conf = dict(CONTEXT_CONF)
            conf.update(SQL_CONF)
            if self.master.startswith("local"):
                conf.update(LOCAL_CONF)
                conf["spark.driver.memory"] = f"{max(1024, int(machine_memory() * LOCAL_DRIVER_MEMORY_SHARE / 2**20))}m"
            conf.update(self.conf)
            if not existing:
                builder = builder.master(self.master)
                for k, v in conf.items():
                    builder = builder.config(k, str(v))
            root = builder.getOrCreate()
            if existing and root.sparkContext.master != self.master:
                warnings.warn(f"a SparkContext on {root.sparkContext.master} is already running in this process: "
                              f"reusing it instead of starting one on {self.master}", stacklevel=3)
            if not existing:
                root.sparkContext.setLogLevel("ERROR")
                _state["owned"] = root
            _state["users"] += 1
            session = root.newSession()
        for k, v in conf.items():
            if k.startswith("spark.sql.") and session.conf.isModifiable(k):
                session.conf.set(k, str(v))
        return session

    def _release(self) -> None:
        with _lock:
            _state["users"] = max(0, _state["users"] - 1)
            if _state["users"] == 0 and _state["owned"] is not None:
                _state["owned"].stop()
                _state["owned"] = None

    # -- helpers ---------------------------------------------------------------------------------

    def _sql(self, step: str, sql: str, params: Params = None):
        try:
            translated = transpile(sql, self.name)  # $name parameters become Spark's :name markers
        except Exception as e:  # parse / unsupported construct
            raise StepError(step, sql, f"cannot translate to Spark SQL: {e}", self.name) from e
        try:
            return translated, self.spark.sql(translated, args=dict(params) if params else None)
        except _errors() as e:
            raise StepError(step, translated, e, self.name) from e

    def _normalised_df(self, df):
        """Cast columns to the normalised types (mirrors normalise_arrow) for writing."""
        from pyspark.sql import functions as F
        from pyspark.sql import types as T

        cols = []
        for f in df.schema.fields:
            t = f.dataType
            target = None
            if isinstance(t, (T.ByteType, T.ShortType, T.IntegerType)):
                target = T.LongType()
            elif isinstance(t, T.FloatType):
                target = T.DoubleType()
            elif isinstance(t, T.DecimalType):
                target = T.LongType() if t.scale == 0 else T.DoubleType()
            elif isinstance(t, T.TimestampType):
                target = T.TimestampNTZType()  # session time zone is UTC: the UTC wall clock
            c = F.col(_q(f.name))
            cols.append(c.cast(target).alias(f.name) if target is not None else c)
        return df.select(*cols)

    @staticmethod
    def _to_arrow(df) -> pa.Table:
        if hasattr(df, "toArrow"):  # PySpark >= 4.0
            return df.toArrow()
        batches = df._collect_as_arrow()  # PySpark 3.x
        return pa.Table.from_batches(batches) if batches else pa.Table.from_pandas(df.limit(0).toPandas())

    # -- interface -------------------------------------------------------------------------------

    def register_parquet(self, name: str, paths: str | list[str], hive_partitioning: bool = True) -> None:
        from pyspark.sql import functions as F
        from pyspark.sql import types as T

        check_name(name)
        files = as_path_list(paths)
        reader = self.spark.read
        if hive_partitioning:
            base = hive_base_path(files)
            if base is not None:
                reader = reader.option("basePath", base)
        try:
            df = reader.parquet(*files)
            if hive_partitioning and "day" in df.columns:
                t = df.schema["day"].dataType
                if not isinstance(t, T.DateType):
                    df = df.withColumn("day", F.col("day").cast(T.DateType()))
        except _errors() as e:
            raise StepError(name, f"-- register_parquet {files}", e, self.name) from e
        self._replace(name, df, cached=False)

    def register_csv(self, name: str, paths: str | list[str]) -> None:
        raise NotImplementedError("CSV inputs are read on DuckDB only (their detected types would differ on "
                                  "Spark): convert them to Parquet, or use the duckdb engine")

    def register_arrow(self, name: str, table: pa.Table) -> None:
        check_name(name)
        df = self.spark.createDataFrame(table)
        self._replace(name, df, cached=False)

    def _replace(self, name: str, df, cached: bool) -> None:
        key = name.lower()
        old = self._cached.pop(key, None)
        df.createOrReplaceTempView(name)
        self._views.add(name)
        if cached:
            self._cached[key] = df
        if old is not None:
            old.unpersist()

    def create_table(self, name: str, sql: str, params: Params = None) -> None:
        check_name(name)
        translated, df = self._sql(name, sql, params)
        df = df.cache()
        try:
            df.count()  # materialise now, so errors surface at this step
        except _errors() as e:
            df.unpersist()
            raise StepError(name, translated, e, self.name) from e
        self._replace(name, df, cached=True)

    def create_view(self, name: str, sql: str) -> None:
        check_name(name)
        _, df = self._sql(name, sql)
        self._replace(name, df, cached=False)

    def query_arrow(self, sql: str, params: Params = None, step: str = "query") -> pa.Table:
        translated, df = self._sql(step, sql, params)
        try:
            return normalise_arrow(self._to_arrow(df))
        except _errors() as e:
            raise StepError(step, translated, e, self.name) from e

    def drop(self, name: str) -> None:
        key = check_name(name).lower()
        old = self._cached.pop(key, None)
        self.spark.catalog.dropTempView(name)
        self._views.discard(name)
        if old is not None:
            old.unpersist()

    def table_arrow(self, name: str) -> pa.Table:
        try:
            return normalise_arrow(self._to_arrow(self.spark.table(_q(check_name(name)))))
        except _errors() as e:
            raise StepError(name, f"SELECT * FROM {_q(name)}", e, self.name) from e

    def row_count(self, name: str) -> int:
        return int(self.spark.table(_q(check_name(name))).count())

    def write_parquet(self, name: str, path: Path, partition_by: list[str] | None = None) -> None:
        check_name(name)
        df = self._normalised_df(self.spark.table(_q(name)))
        parts = list(partition_by or [])
        unknown = [p for p in parts if p not in df.columns]
        if unknown:
            raise ValueError(f"partition columns {unknown} are not columns of {name}")
        with atomic_dir(Path(path)) as tmp:
            target = str(tmp.resolve())
            if parts:
                # one task per partition value: one file per hive folder instead of one per task
                df.repartition(*parts).write.mode("overwrite").partitionBy(*parts).parquet(target)
            else:
                df.write.mode("overwrite").parquet(target)
            if not any(tmp.rglob("*.parquet")):  # empty table: one empty file carrying the schema
                import pyarrow.parquet as pq

                shutil.rmtree(tmp, ignore_errors=True)
                tmp.mkdir(parents=True)
                pq.write_table(normalise_arrow(self._to_arrow(df.limit(0))), tmp / "part-0.parquet")
            for junk in list(tmp.rglob("_SUCCESS")) + list(tmp.rglob(".*.crc")):
                os.remove(junk)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._spark is None:
            return
        with contextlib.suppress(*_errors()):
            for df in self._cached.values():
                df.unpersist()
            for v in self._views:
                self._spark.catalog.dropTempView(v)
        self._cached.clear()
        self._views.clear()
        self._spark = None
        self._release()
