file(REMOVE_RECURSE
  "CMakeFiles/fdn_obj.dir/src/core/alloc.c.o"
  "CMakeFiles/fdn_obj.dir/src/core/alloc.c.o.d"
  "CMakeFiles/fdn_obj.dir/src/core/clock.c.o"
  "CMakeFiles/fdn_obj.dir/src/core/clock.c.o.d"
  "CMakeFiles/fdn_obj.dir/src/core/error.c.o"
  "CMakeFiles/fdn_obj.dir/src/core/error.c.o.d"
  "CMakeFiles/fdn_obj.dir/src/core/error_context.c.o"
  "CMakeFiles/fdn_obj.dir/src/core/error_context.c.o.d"
  "CMakeFiles/fdn_obj.dir/src/core/version.c.o"
  "CMakeFiles/fdn_obj.dir/src/core/version.c.o.d"
  "CMakeFiles/fdn_obj.dir/src/logic/crc32c.c.o"
  "CMakeFiles/fdn_obj.dir/src/logic/crc32c.c.o.d"
  "CMakeFiles/fdn_obj.dir/src/logic/event.c.o"
  "CMakeFiles/fdn_obj.dir/src/logic/event.c.o.d"
  "CMakeFiles/fdn_obj.dir/src/logic/event_codec.c.o"
  "CMakeFiles/fdn_obj.dir/src/logic/event_codec.c.o.d"
  "CMakeFiles/fdn_obj.dir/src/services/event_service.c.o"
  "CMakeFiles/fdn_obj.dir/src/services/event_service.c.o.d"
  "CMakeFiles/fdn_obj.dir/src/services/event_store.c.o"
  "CMakeFiles/fdn_obj.dir/src/services/event_store.c.o.d"
  "CMakeFiles/fdn_obj.dir/src/storage/event_sqlite.c.o"
  "CMakeFiles/fdn_obj.dir/src/storage/event_sqlite.c.o.d"
  "CMakeFiles/fdn_obj.dir/src/validation/event_validate.c.o"
  "CMakeFiles/fdn_obj.dir/src/validation/event_validate.c.o.d"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/fdn_obj.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
