file(REMOVE_RECURSE
  "libfdn.pdb"
  "libfdn.so"
  "libfdn.so.0"
  "libfdn.so.0.1.0"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/fdn.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
