# Empty compiler generated dependencies file for fault_test_events_kill.
# This may be replaced when dependencies are built.
