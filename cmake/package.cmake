# Debian packages of Foundation (CPack, `make package`), one per install component:
#   libfdn0        libfdn.so.N (component libfdn; named after the soname, Debian policy 8.1)
#   libfdn-admin0  libfdn_admin.so.N (component libfdnadmin; with FDN_BUILD_ADMIN)
#   libfdn-dev     headers, the .so links, static libraries, pkg-config files, CMake package
#   fdn            the fdn program (linked statically), fdn(1) and the systemd unit
# Run-time dependencies come from dpkg-shlibdeps; libfdn-dev depends on the libraries of the
# same version and on the development packages `pkg-config --static` and the CMake package
# need. Every package carries the licence (copyright) and the Debian changelog
# (packaging/changelog, gzipped); binaries are stripped; the library packages register with
# ldconfig through a trigger (packaging/triggers) instead of CPack's ldconfig calls in
# postinst/postrm (which packaging/postinst and postrm replace with scripts that do nothing).
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME foundation)
set(CPACK_PACKAGE_VENDOR "Foundation for C")
set(CPACK_PACKAGE_CONTACT "Foundation for C maintainers <maintainers@foundation-c.org>")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
  "Supervised services, live config, event store, telemetry and protection for C")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_PACKAGE_DIRECTORY ${CMAKE_BINARY_DIR}/package)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL libfdn dev fdn)
if(FDN_BUILD_ADMIN)
  list(APPEND CPACK_COMPONENTS_ALL libfdnadmin)
endif()
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# libfdn_admin.so needs libfdn.so, which is in another package of this build: dpkg-shlibdeps
# finds it in the build tree (the component dependency gives the Depends)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS_PRIVATE_DIRS ${CMAKE_BINARY_DIR})
set(CPACK_DEBIAN_PACKAGE_SECTION libs)
set(CPACK_DEBIAN_ENABLE_COMPONENT_DEPENDS ON)
# DEBIAN/shlibs for libfdn (lintian: no-shlibs), so packages built against it get a Depends
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS_POLICY ">=")
# each package carries the licence as /usr/share/doc/<package>/copyright (Debian policy 12.5)
# and the changelog as changelog.gz (a native package: policy 12.7), gzipped without a time
# stamp so that the package is reproducible
set(_fdn_changelog_gz ${CMAKE_BINARY_DIR}/packaging/changelog.gz)
add_custom_command(OUTPUT ${_fdn_changelog_gz}
  COMMAND ${CMAKE_COMMAND} -E make_directory ${CMAKE_BINARY_DIR}/packaging
  COMMAND sh -c "gzip -9n -c '${CMAKE_CURRENT_SOURCE_DIR}/packaging/changelog' > '${_fdn_changelog_gz}'"
  DEPENDS packaging/changelog VERBATIM)
add_custom_target(fdn_changelog ALL DEPENDS ${_fdn_changelog_gz})
set(_fdn_pkg_libfdn libfdn${PROJECT_VERSION_MAJOR})
set(_fdn_pkg_libfdnadmin libfdn-admin${PROJECT_VERSION_MAJOR})
set(_fdn_pkg_dev libfdn-dev)
set(_fdn_pkg_fdn fdn)
foreach(_c libfdn libfdnadmin dev fdn)
  install(FILES ${CMAKE_CURRENT_SOURCE_DIR}/LICENSE
    DESTINATION ${CMAKE_INSTALL_DATADIR}/doc/${_fdn_pkg_${_c}}
    RENAME copyright COMPONENT ${_c} EXCLUDE_FROM_ALL)
  install(FILES ${_fdn_changelog_gz} DESTINATION ${CMAKE_INSTALL_DATADIR}/doc/${_fdn_pkg_${_c}}
    COMPONENT ${_c} EXCLUDE_FROM_ALL)
endforeach()
set(_fdn_ldconfig_trigger ${CMAKE_CURRENT_SOURCE_DIR}/packaging/triggers
  ${CMAKE_CURRENT_SOURCE_DIR}/packaging/postinst ${CMAKE_CURRENT_SOURCE_DIR}/packaging/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)

set(CPACK_DEBIAN_LIBFDN_PACKAGE_NAME ${_fdn_pkg_libfdn})
set(CPACK_COMPONENT_LIBFDN_DESCRIPTION "Foundation for C: the shared library libfdn")
set(CPACK_DEBIAN_LIBFDN_PACKAGE_CONTROL_EXTRA ${_fdn_ldconfig_trigger})

set(CPACK_DEBIAN_LIBFDNADMIN_PACKAGE_NAME ${_fdn_pkg_libfdnadmin})
set(CPACK_COMPONENT_LIBFDNADMIN_DESCRIPTION
  "Foundation for C: the shared library libfdn_admin (the admin HTTP API)")
set(CPACK_COMPONENT_LIBFDNADMIN_DEPENDS libfdn)
set(CPACK_DEBIAN_LIBFDNADMIN_PACKAGE_CONTROL_EXTRA ${_fdn_ldconfig_trigger})

set(CPACK_DEBIAN_DEV_PACKAGE_NAME libfdn-dev)
set(CPACK_DEBIAN_DEV_PACKAGE_SECTION libdevel)
set(CPACK_COMPONENT_DEV_DESCRIPTION
  "Foundation for C: headers, static libraries, pkg-config files and CMake package")
set(CPACK_COMPONENT_DEV_DEPENDS libfdn)
if(FDN_BUILD_ADMIN)
  list(APPEND CPACK_COMPONENT_DEV_DEPENDS libfdnadmin)
endif()
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
  "Foundation for C: the fdn program, its man page and systemd unit.\nfdn serve runs the runtime with its admin HTTP API; fdn config, events\nand registry work from the command line.")

include(CPack)
