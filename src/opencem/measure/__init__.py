"""Measure: KPI -> KQI -> CEI on DuckDB or Spark."""
