# Empty compiler generated dependencies file for unit_test_clock.
# This may be replaced when dependencies are built.
