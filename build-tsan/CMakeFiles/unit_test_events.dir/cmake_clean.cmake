file(REMOVE_RECURSE
  "CMakeFiles/unit_test_events.dir/tests/unit/test_events.c.o"
  "CMakeFiles/unit_test_events.dir/tests/unit/test_events.c.o.d"
  "unit_test_events"
  "unit_test_events.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/unit_test_events.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
