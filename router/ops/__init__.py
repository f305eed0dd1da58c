"""The operator's tools behind `python -m router`: check, explain, status, report."""
