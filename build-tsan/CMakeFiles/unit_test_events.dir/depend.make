# Empty dependencies file for unit_test_events.
# This may be replaced when dependencies are built.
