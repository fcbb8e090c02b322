file(REMOVE_RECURSE
  "CMakeFiles/stress_test_events_stress.dir/tests/stress/test_events_stress.c.o"
  "CMakeFiles/stress_test_events_stress.dir/tests/stress/test_events_stress.c.o.d"
  "stress_test_events_stress"
  "stress_test_events_stress.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/stress_test_events_stress.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
