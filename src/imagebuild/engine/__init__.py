"""Running a plan: the Docker adapter (python-on-whales), progress, the build log, the report."""
