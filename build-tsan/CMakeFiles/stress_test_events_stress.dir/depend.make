# Empty dependencies file for stress_test_events_stress.
# This may be replaced when dependencies are built.
