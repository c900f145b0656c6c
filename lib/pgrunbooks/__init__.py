"""pgrunbooks: executable, parameterized runbooks for PostgreSQL maintenance and incidents."""

from pgrunbooks.errors import PgRunbooksError
from pgrunbooks.findings import Finding, Severity

__all__ = ["Finding", "PgRunbooksError", "Severity", "__version__"]
__version__ = "0.1.0"
