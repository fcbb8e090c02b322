
# Consider dependencies only in project.
set(CMAKE_DEPENDS_IN_PROJECT_ONLY OFF)

# The set of languages for which implicit dependencies are needed:
set(CMAKE_DEPENDS_LANGUAGES
  )

# The set of dependency files which are needed:
set(CMAKE_DEPENDS_DEPENDENCY_FILES
  "/work/wt/events/src/core/alloc.c" "CMakeFiles/fdn_obj.dir/src/core/alloc.c.o" "gcc" "CMakeFiles/fdn_obj.dir/src/core/alloc.c.o.d"
  "/work/wt/events/src/core/clock.c" "CMakeFiles/fdn_obj.dir/src/core/clock.c.o" "gcc" "CMakeFiles/fdn_obj.dir/src/core/clock.c.o.d"
  "/work/wt/events/src/core/error.c" "CMakeFiles/fdn_obj.dir/src/core/error.c.o" "gcc" "CMakeFiles/fdn_obj.dir/src/core/error.c.o.d"
  "/work/wt/events/src/core/error_context.c" "CMakeFiles/fdn_obj.dir/src/core/error_context.c.o" "gcc" "CMakeFiles/fdn_obj.dir/src/core/error_context.c.o.d"
  "/work/wt/events/src/core/version.c" "CMakeFiles/fdn_obj.dir/src/core/version.c.o" "gcc" "CMakeFiles/fdn_obj.dir/src/core/version.c.o.d"
  "/work/wt/events/src/logic/crc32c.c" "CMakeFiles/fdn_obj.dir/src/logic/crc32c.c.o" "gcc" "CMakeFiles/fdn_obj.dir/src/logic/crc32c.c.o.d"
  "/work/wt/events/src/logic/event.c" "CMakeFiles/fdn_obj.dir/src/logic/event.c.o" "gcc" "CMakeFiles/fdn_obj.dir/src/logic/event.c.o.d"
  "/work/wt/events/src/logic/event_codec.c" "CMakeFiles/fdn_obj.dir/src/logic/event_codec.c.o" "gcc" "CMakeFiles/fdn_obj.dir/src/logic/event_codec.c.o.d"
  "/work/wt/events/src/services/event_service.c" "CMakeFiles/fdn_obj.dir/src/services/event_service.c.o" "gcc" "CMakeFiles/fdn_obj.dir/src/services/event_service.c.o.d"
  "/work/wt/events/src/services/event_store.c" "CMakeFiles/fdn_obj.dir/src/services/event_store.c.o" "gcc" "CMakeFiles/fdn_obj.dir/src/services/event_store.c.o.d"
  "/work/wt/events/src/storage/event_sqlite.c" "CMakeFiles/fdn_obj.dir/src/storage/event_sqlite.c.o" "gcc" "CMakeFiles/fdn_obj.dir/src/storage/event_sqlite.c.o.d"
  "/work/wt/events/src/validation/event_validate.c" "CMakeFiles/fdn_obj.dir/src/validation/event_validate.c.o" "gcc" "CMakeFiles/fdn_obj.dir/src/validation/event_validate.c.o.d"
  )

# Targets to which this target links.
set(CMAKE_TARGET_LINKED_INFO_FILES
  )

# Fortran module output directory.
set(CMAKE_Fortran_TARGET_MODULE_DIR "")
