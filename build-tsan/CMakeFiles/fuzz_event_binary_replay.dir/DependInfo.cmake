
# Consider dependencies only in project.
set(CMAKE_DEPENDS_IN_PROJECT_ONLY OFF)

# The set of languages for which implicit dependencies are needed:
set(CMAKE_DEPENDS_LANGUAGES
  )

# The set of dependency files which are needed:
set(CMAKE_DEPENDS_DEPENDENCY_FILES
  "/work/wt/events/fuzz/fuzz_event_binary.c" "CMakeFiles/fuzz_event_binary_replay.dir/fuzz/fuzz_event_binary.c.o" "gcc" "CMakeFiles/fuzz_event_binary_replay.dir/fuzz/fuzz_event_binary.c.o.d"
  "/work/wt/events/fuzz/replay_main.c" "CMakeFiles/fuzz_event_binary_replay.dir/fuzz/replay_main.c.o" "gcc" "CMakeFiles/fuzz_event_binary_replay.dir/fuzz/replay_main.c.o.d"
  )

# Targets to which this target links.
set(CMAKE_TARGET_LINKED_INFO_FILES
  "/work/wt/events/build-tsan/CMakeFiles/fdn_static.dir/DependInfo.cmake"
  )

# Fortran module output directory.
set(CMAKE_Fortran_TARGET_MODULE_DIR "")
