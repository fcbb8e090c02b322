# Debian packages of Foundation (CPack, `make package`): three packages from the install rules'
# components:
#   libfdn      the shared libraries (libfdn.so.N, libfdn_admin.so.N)
#   libfdn-dev  headers, the .so links, static libraries, pkg-config files, CMake package
#   fdn         the fdn program, fdn(1) and the systemd unit
# Run-time dependencies come from dpkg-shlibdeps; libfdn-dev depends on libfdn of the same
# version and on the development packages `pkg-config --static` and the CMake package need.
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME foundation)
set(CPACK_PACKAGE_VENDOR "Foundation for C")
set(CPACK_PACKAGE_CONTACT "Foundation for C maintainers <foundation@localhost>")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
  "Supervised services, live config, event store, telemetry and protection for C")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_PACKAGE_DIRECTORY ${CMAKE_BINARY_DIR}/package)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL libfdn dev fdn)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_SECTION libs)
set(CPACK_DEBIAN_ENABLE_COMPONENT_DEPENDS ON)
# DEBIAN/shlibs for libfdn (lintian: no-shlibs), so packages built against it get a Depends
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS_POLICY ">=")
# each package carries the licence as /usr/share/doc/<package>/copyright (Debian policy 12.5)
foreach(_c libfdn dev fdn)
  set(_p ${_c})
  if(_c STREQUAL dev)
    set(_p libfdn-dev)
  endif()
  install(FILES ${CMAKE_CURRENT_SOURCE_DIR}/LICENSE DESTINATION ${CMAKE_INSTALL_DATADIR}/doc/${_p}
    RENAME copyright COMPONENT ${_c} EXCLUDE_FROM_ALL)
endforeach()

set(CPACK_DEBIAN_LIBFDN_PACKAGE_NAME libfdn)
set(CPACK_COMPONENT_LIBFDN_DESCRIPTION "Foundation for C: shared libraries (libfdn, libfdn_admin)")

set(CPACK_DEBIAN_DEV_PACKAGE_NAME libfdn-dev)
set(CPACK_DEBIAN_DEV_PACKAGE_SECTION libdevel)
set(CPACK_COMPONENT_DEV_DESCRIPTION
  "Foundation for C: headers, static libraries, pkg-config files and CMake package")
set(CPACK_COMPONENT_DEV_DEPENDS libfdn)
set(_dev_depends "pkg-config, libjansson-dev, libsqlite3-dev, liburcu-dev, libzstd-dev")
if(FDN_BUILD_ADMIN)
  string(APPEND _dev_depends ", libmicrohttpd-dev")
endif()
if(FDN_WITH_REDIS)
  string(APPEND _dev_depends ", libhiredis-dev")
endif()
set(CPACK_DEBIAN_DEV_PACKAGE_DEPENDS "${_dev_depends}")

set(CPACK_DEBIAN_FDN_PACKAGE_NAME fdn)
set(CPACK_DEBIAN_FDN_PACKAGE_SECTION net)
set(CPACK_COMPONENT_FDN_DESCRIPTION
  "Foundation for C: the fdn program (fdn serve: the runtime with its admin HTTP API), its man page and systemd unit")

include(CPack)
