# SPDX-License-Identifier: BSD-3-Clause
"""The exception and warning tree of spherex_dask.

Every error raised on purpose by this package derives from :class:`SpherexDaskError`; each
leaf also inherits the matching built-in exception, so generic ``except LookupError`` or
``except ValueError`` clauses keep working::

    SpherexDaskError(Exception)
    ├── ConfigError(ValueError)
    │   └── UniverseMismatchError
    ├── DimensionError(ValueError)
    │   ├── DataIdError(KeyError)          unknown dimension, missing key, wrong type
    │   ├── DataIdValueError(LookupError)  a value with no dimension record
    │   └── RecordConflictError            sync() found a different record
    ├── DatasetTypeError(ValueError)
    │   └── DatasetTypeConflictError       redefinition with different dimensions/storage class
    ├── MissingDatasetTypeError(LookupError)
    ├── CollectionError(ValueError)
    │   ├── MissingCollectionError(LookupError)
    │   ├── CollectionTypeError(TypeError) wrong kind of collection for the operation
    │   └── CollectionCycleError           a CHAINED collection that would contain itself
    ├── DatasetNotFoundError(LookupError)
    ├── DatasetConflictError(ValueError)   (dataset type, data ID, run) already has a dataset
    ├── CalibrationConflictError(ValueError) overlapping validity ranges
    ├── QueryError(ValueError)
    │   ├── QuerySyntaxError               carries .column (1-based) of the bad token
    │   └── UnknownNameError(LookupError)  lists the names that exist
    │       └── DimensionNotInQueryError   a dimension the dataset type (or query) lacks
    ├── RegistryBusyError(TimeoutError)    another process kept the registry locked too long
    ├── DatastoreError(OSError)
    │   ├── FileMissingError(FileNotFoundError)
    │   ├── ChecksumError
    │   └── TemplateError(ValueError)
    ├── FormatterError(ValueError)
    │   └── UnknownFormatterError(LookupError)
    ├── IngestError(ValueError)
    ├── OutputExistsError(FileExistsError) a file to write exists and overwrite was not asked
    ├── PipelineError(ValueError)
    │   ├── PipelineDefinitionError
    │   └── MissingPrerequisiteError(LookupError)
    └── TaskFailedError(RuntimeError)

    SpherexDaskWarning(UserWarning)
"""

from __future__ import annotations

__all__ = [
    "CalibrationConflictError",
    "ChecksumError",
    "CollectionCycleError",
    "CollectionError",
    "CollectionTypeError",
    "ConfigError",
    "DataIdError",
    "DataIdValueError",
    "DatasetConflictError",
    "DatasetNotFoundError",
    "DatasetTypeConflictError",
    "DatasetTypeError",
    "DimensionNotInQueryError",
    "DatastoreError",
    "DimensionError",
    "FileMissingError",
    "FormatterError",
    "IngestError",
    "MissingCollectionError",
    "MissingDatasetTypeError",
    "MissingPrerequisiteError",
    "OutputExistsError",
    "PipelineDefinitionError",
    "PipelineError",
    "QueryError",
    "QuerySyntaxError",
    "RecordConflictError",
    "RegistryBusyError",
    "SpherexDaskError",
    "SpherexDaskWarning",
    "TaskFailedError",
    "TemplateError",
    "UniverseMismatchError",
    "UnknownFormatterError",
    "UnknownNameError",
]


class SpherexDaskError(Exception):
    """Root of every error raised on purpose by spherex_dask."""


class SpherexDaskWarning(UserWarning):
    """Root of every warning emitted by spherex_dask."""


class ConfigError(SpherexDaskError, ValueError):
    """A configuration file or value is invalid."""


class UniverseMismatchError(ConfigError):
    """The dimension universe given does not match the one stored in the repository."""


class DimensionError(SpherexDaskError, ValueError):
    """A problem with dimensions, data IDs or dimension records."""


class DataIdError(DimensionError, KeyError):
    """A data ID names an unknown dimension, lacks a required key or has a value of wrong type."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class DataIdValueError(DimensionError, LookupError):
    """A data ID value has no dimension record in the registry."""


class RecordConflictError(DimensionError):
    """``sync`` found an existing dimension record that differs from the one given."""


class DatasetTypeError(SpherexDaskError, ValueError):
    """A dataset type definition is invalid."""


class DatasetTypeConflictError(DatasetTypeError):
    """A dataset type name is already registered with a different definition."""


class MissingDatasetTypeError(SpherexDaskError, LookupError):
    """A dataset type is not registered."""


class CollectionError(SpherexDaskError, ValueError):
    """A problem with collections."""


class MissingCollectionError(CollectionError, LookupError):
    """A collection does not exist."""


class CollectionTypeError(CollectionError, TypeError):
    """A collection is of the wrong type for the requested operation."""


class CollectionCycleError(CollectionError):
    """A CHAINED collection definition would contain itself."""


class DatasetNotFoundError(SpherexDaskError, LookupError):
    """No dataset matches the dataset type, data ID and collections given."""


class DatasetConflictError(SpherexDaskError, ValueError):
    """A dataset with the same dataset type, data ID and run (or id) already exists."""


class CalibrationConflictError(SpherexDaskError, ValueError):
    """Certifying would give one dataset type and data ID overlapping validity ranges."""


class QueryError(SpherexDaskError, ValueError):
    """A query could not be built or run."""


class QuerySyntaxError(QueryError):
    """A query expression is not syntactically valid.

    Attributes
    ----------
    expression
        The text that was parsed.
    column
        1-based column of the offending token.
    """

    def __init__(self, message: str, *, expression: str = "", column: int = 0) -> None:
        self.expression = expression
        self.column = column
        if expression:
            pointer = " " * max(column - 1, 0) + "^"
            message = f"{message} (at column {column})\n  {expression}\n  {pointer}"
        super().__init__(message)


class UnknownNameError(QueryError, LookupError):
    """A query expression names an unknown dimension, field or bind parameter."""


class DimensionNotInQueryError(UnknownNameError):
    """A query expression names a dimension that the query (its dataset type) does not have,
    such as ``detector`` for a dataset type without dimensions."""


class RegistryBusyError(SpherexDaskError, TimeoutError):
    """Another process kept the registry database locked longer than the wait allowed.

    Raised on SQLite, whose writers take turns on one lock; nothing was changed.
    """


class DatastoreError(SpherexDaskError, OSError):
    """A datastore operation failed."""


class FileMissingError(DatastoreError, FileNotFoundError):
    """A registered dataset's file is missing from the datastore."""


class ChecksumError(DatastoreError):
    """A file's checksum differs from the one recorded at write or ingest."""


class TemplateError(DatastoreError, ValueError):
    """A file template is invalid or cannot be filled for a dataset."""


class FormatterError(SpherexDaskError, ValueError):
    """A formatter could not read or write a file."""


class UnknownFormatterError(FormatterError, LookupError):
    """No formatter is registered under the requested name or for the requested type."""


class IngestError(SpherexDaskError, ValueError):
    """Ingest failed; nothing was registered or transferred."""


class OutputExistsError(SpherexDaskError, FileExistsError):
    """A file to be written exists already and overwriting was not requested."""


class PipelineError(SpherexDaskError, ValueError):
    """A problem with a pipeline or quantum graph."""


class PipelineDefinitionError(PipelineError):
    """A pipeline definition (YAML, task connections or config) is invalid."""


class MissingPrerequisiteError(PipelineError, LookupError):
    """A prerequisite (calibration) input could not be found for a quantum."""


class TaskFailedError(SpherexDaskError, RuntimeError):
    """One or more quanta failed while running a pipeline."""
