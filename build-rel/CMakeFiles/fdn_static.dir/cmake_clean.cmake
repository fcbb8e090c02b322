file(REMOVE_RECURSE
  "libfdn.a"
  "libfdn.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/fdn_static.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
