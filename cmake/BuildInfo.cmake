# The labels of fdn_build_info (docs/telemetry.md): revision, build type, compiler and its
# version, written to ${CMAKE_CURRENT_BINARY_DIR}/generated/fdn_build_info.h at configure time.
# Revision: -DFDN_REVISION=<text> when given (packagers); else the commit of the source tree's
# own git checkout (git rev-parse, only when the checkout's top level is this source tree, so
# a tarball unpacked inside another repository does not take that repository's commit); else
# "unknown". Nothing reads the clock or the environment: a tarball without .git builds the
# same bytes every time. The revision is read when CMake configures (re-run cmake after a
# commit to refresh it).
set(FDN_REVISION "" CACHE STRING "fdn_build_info's revision label (empty: from git, else unknown)")
set(FDN_BUILD_REVISION "unknown")
if(NOT FDN_REVISION STREQUAL "")
  set(FDN_BUILD_REVISION "${FDN_REVISION}")
else()
  find_package(Git QUIET)
  if(GIT_FOUND)
    execute_process(COMMAND ${GIT_EXECUTABLE} rev-parse --show-toplevel
      WORKING_DIRECTORY ${CMAKE_CURRENT_SOURCE_DIR}
      OUTPUT_VARIABLE _fdn_git_top RESULT_VARIABLE _fdn_git_rc
      OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
    if(_fdn_git_rc EQUAL 0)
      get_filename_component(_fdn_git_top "${_fdn_git_top}" REALPATH)
      get_filename_component(_fdn_src_real "${CMAKE_CURRENT_SOURCE_DIR}" REALPATH)
      if(_fdn_git_top STREQUAL _fdn_src_real)
        execute_process(COMMAND ${GIT_EXECUTABLE} rev-parse --short=12 HEAD
          WORKING_DIRECTORY ${CMAKE_CURRENT_SOURCE_DIR}
          OUTPUT_VARIABLE _fdn_git_rev RESULT_VARIABLE _fdn_git_rc
          OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
        if(_fdn_git_rc EQUAL 0 AND _fdn_git_rev MATCHES "^[0-9a-f]+$")
          set(FDN_BUILD_REVISION "${_fdn_git_rev}")
        endif()
      endif()
    endif()
  endif()
endif()
# label values are written into a C string: keep printable characters without " and \
string(REGEX REPLACE "[^A-Za-z0-9._+:/@-]" "_" FDN_BUILD_REVISION "${FDN_BUILD_REVISION}")
if(CMAKE_BUILD_TYPE)
  string(TOLOWER "${CMAKE_BUILD_TYPE}" FDN_BUILD_TYPE_LABEL)
else()
  set(FDN_BUILD_TYPE_LABEL "none")
endif()
string(REGEX REPLACE "[^A-Za-z0-9._+-]" "_" FDN_BUILD_TYPE_LABEL "${FDN_BUILD_TYPE_LABEL}")
string(TOLOWER "${CMAKE_C_COMPILER_ID}" FDN_BUILD_COMPILER)
if(FDN_BUILD_COMPILER STREQUAL "")
  set(FDN_BUILD_COMPILER "unknown")
endif()
string(REGEX REPLACE "[^A-Za-z0-9._+-]" "_" FDN_BUILD_COMPILER "${FDN_BUILD_COMPILER}")
set(FDN_BUILD_CC_VERSION "${CMAKE_C_COMPILER_VERSION}")
if(FDN_BUILD_CC_VERSION STREQUAL "")
  set(FDN_BUILD_CC_VERSION "unknown")
endif()
string(REGEX REPLACE "[^A-Za-z0-9._+-]" "_" FDN_BUILD_CC_VERSION "${FDN_BUILD_CC_VERSION}")
configure_file(${CMAKE_CURRENT_SOURCE_DIR}/cmake/build_info.h.in
  ${CMAKE_CURRENT_BINARY_DIR}/generated/fdn_build_info.h @ONLY)
