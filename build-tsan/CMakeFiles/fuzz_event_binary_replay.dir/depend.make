# Empty dependencies file for fuzz_event_binary_replay.
# This may be replaced when dependencies are built.
