# Empty dependencies file for fuzz_event_json_replay.
# This may be replaced when dependencies are built.
