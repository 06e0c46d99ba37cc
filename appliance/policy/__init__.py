"""The one policy authority: loaded once (load.py), judged in one place (judge.py)."""
from .holder import PolicyHolder, list_labels
from .judge import Judge, Verdict
from .load import Policy, load_policy

__all__ = ["Judge", "Policy", "PolicyHolder", "Verdict", "list_labels", "load_policy"]
