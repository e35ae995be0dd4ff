"""`inv bench`: build scenarios measured for this build and the naive baseline, and the report."""
