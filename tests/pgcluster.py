"""The suite's throwaway PostgreSQL cluster: :mod:`brewline.pgcluster` (the demo uses it too)."""

from brewline.pgcluster import PostgresServer

__all__ = ["PostgresServer"]
