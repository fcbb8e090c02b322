file(REMOVE_RECURSE
  "CMakeFiles/unit_test_clock.dir/tests/unit/test_clock.c.o"
  "CMakeFiles/unit_test_clock.dir/tests/unit/test_clock.c.o.d"
  "unit_test_clock"
  "unit_test_clock.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/unit_test_clock.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
