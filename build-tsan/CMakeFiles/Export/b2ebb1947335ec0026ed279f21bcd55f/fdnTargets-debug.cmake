#----------------------------------------------------------------
# Generated CMake target import file for configuration "Debug".
#----------------------------------------------------------------

# Commands may need to know the format version.
set(CMAKE_IMPORT_FILE_VERSION 1)

# Import target "fdn::fdn" for configuration "Debug"
set_property(TARGET fdn::fdn APPEND PROPERTY IMPORTED_CONFIGURATIONS DEBUG)
set_target_properties(fdn::fdn PROPERTIES
  IMPORTED_LOCATION_DEBUG "${_IMPORT_PREFIX}/lib/libfdn.so.0.1.0"
  IMPORTED_SONAME_DEBUG "libfdn.so.0"
  )

list(APPEND _cmake_import_check_targets fdn::fdn )
list(APPEND _cmake_import_check_files_for_fdn::fdn "${_IMPORT_PREFIX}/lib/libfdn.so.0.1.0" )

# Import target "fdn::fdn_static" for configuration "Debug"
set_property(TARGET fdn::fdn_static APPEND PROPERTY IMPORTED_CONFIGURATIONS DEBUG)
set_target_properties(fdn::fdn_static PROPERTIES
  IMPORTED_LINK_INTERFACE_LANGUAGES_DEBUG "C"
  IMPORTED_LOCATION_DEBUG "${_IMPORT_PREFIX}/lib/libfdn.a"
  )

list(APPEND _cmake_import_check_targets fdn::fdn_static )
list(APPEND _cmake_import_check_files_for_fdn::fdn_static "${_IMPORT_PREFIX}/lib/libfdn.a" )

# Commands beyond this point should not need to know the version.
set(CMAKE_IMPORT_FILE_VERSION)
