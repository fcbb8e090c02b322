file(REMOVE_RECURSE
  "CMakeFiles/fdn_cli.dir/tools/fdn/main.c.o"
  "CMakeFiles/fdn_cli.dir/tools/fdn/main.c.o.d"
  "bin/fdn"
  "bin/fdn.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/fdn_cli.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
