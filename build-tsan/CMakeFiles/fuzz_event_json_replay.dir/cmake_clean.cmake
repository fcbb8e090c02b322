file(REMOVE_RECURSE
  "CMakeFiles/fuzz_event_json_replay.dir/fuzz/fuzz_event_json.c.o"
  "CMakeFiles/fuzz_event_json_replay.dir/fuzz/fuzz_event_json.c.o.d"
  "CMakeFiles/fuzz_event_json_replay.dir/fuzz/replay_main.c.o"
  "CMakeFiles/fuzz_event_json_replay.dir/fuzz/replay_main.c.o.d"
  "fuzz_event_json_replay"
  "fuzz_event_json_replay.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/fuzz_event_json_replay.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
