"""Built-in dataset tools: list, profile and clean versioned CSV/Parquet datasets."""

from typing import Annotated

from pydantic import Field

from agentmesh.plugins.operations.world import CleanOperation, World
from agentmesh.tools import ToolContext, tool

DatasetName = Annotated[str, Field(min_length=1, max_length=64)]


@tool
def list_datasets(ctx: ToolContext) -> dict:
    """List the datasets with their format, number of versions, rows, quality score (0-100) and whether
    policy protects them from cleaning."""
    return ctx.resource(World).list_datasets()


@tool(target="dataset")
def profile_dataset(dataset: DatasetName, ctx: ToolContext) -> dict:
    """Profile the latest version of a dataset: rows, per-column types and null rates, duplicate rows and
    keys, type violations, outliers, inconsistent categories, a quality score, and suggested cleaning
    operations ready to pass to clean_dataset.

    Args:
        dataset: Name of the dataset, e.g. "customers".
    """
    return ctx.resource(World).profile_dataset(dataset)


@tool(risk="write", target="dataset")
def clean_dataset(
    dataset: DatasetName,
    operations: Annotated[list[CleanOperation], Field(min_length=1, max_length=20)],
    ctx: ToolContext,
) -> dict:
    """Clean a dataset by applying operations in order, writing a new version (the original is kept).
    Rows a cast cannot convert go to a quarantine file. Returns rows and quality before and after.

    Args:
        dataset: Name of the dataset, e.g. "customers".
        operations: Cleaning steps in order, each an object with "op": dedupe (columns), drop_nulls (column),
            fill_nulls (column, value), cast (column, type), trim (column), normalize_text (column, case),
            map_categories (column, mapping), clip_outliers or drop_outliers (column, method).
    """
    return ctx.resource(World).clean_dataset(dataset, operations, key=ctx.idempotency_key)
