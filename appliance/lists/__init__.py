from .index import Match, Source
from .load import FileReport, ListSet, Verdict, load

__all__ = ["FileReport", "ListSet", "Match", "Source", "Verdict", "load"]
