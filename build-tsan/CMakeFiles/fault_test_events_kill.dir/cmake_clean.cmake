file(REMOVE_RECURSE
  "CMakeFiles/fault_test_events_kill.dir/tests/fault/test_events_kill.c.o"
  "CMakeFiles/fault_test_events_kill.dir/tests/fault/test_events_kill.c.o.d"
  "fault_test_events_kill"
  "fault_test_events_kill.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/fault_test_events_kill.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
