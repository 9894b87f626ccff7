# Installation (FHS) and the Debian package.  Included by CMakeLists.txt after
# the targets; other cmake/*.cmake files (e.g. the man page) add their own
# install() rules beside these.
#
#   cmake --install build [--prefix /usr/local]   (DESTDIR honoured)
#   make install PREFIX=/usr/local [DESTDIR=...]
#   make deb                                       (build/o2c_VERSION_ARCH.deb)
#
#   PREFIX/bin/o2c                    the binary (web UI and built-in Lua embedded)
#   PREFIX/share/o2c/scripts, kb      default assessment scripts and knowledge base
#   PREFIX/etc/o2c/o2c.conf.lua       the example config (/etc/o2c for the /usr prefix)
#   PREFIX/lib/systemd/system/o2c.service
#   PREFIX/share/doc/o2c              README, proxy examples (nginx, Caddy)
# The binary finds share/o2c and etc/o2c relative to itself
# (core/host/install_dirs.c); its default data folder is O2C_INSTALLED_DATA_DIR.

# Installing never builds: `make install`/`make deb` build o2c first, and
# CPack's preinstall step would otherwise build every test and fuzzer.
set(CMAKE_SKIP_INSTALL_ALL_DEPENDENCY ON)
install(TARGETS o2c RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(DIRECTORY scripts kb DESTINATION ${CMAKE_INSTALL_DATADIR}/o2c
        PATTERN ".*" EXCLUDE PATTERN "*~" EXCLUDE)
install(FILES README.md config/nginx-o2c.conf config/Caddyfile
        DESTINATION ${CMAKE_INSTALL_DOCDIR})

# Chosen when installing, since `--prefix` and CPack pick the prefix then:
#   the config in /etc/o2c when the prefix is /usr (the package), else PREFIX/etc/o2c;
#   the unit naming the installed binary (config/o2c.service says /usr/bin/o2c).
set(O2C_UNIT_OUT ${CMAKE_BINARY_DIR}/o2c.service)
install(CODE "set(O2C_SOURCE_DIR \"${CMAKE_SOURCE_DIR}\")
set(O2C_UNIT_OUT \"${O2C_UNIT_OUT}\")
set(O2C_BINDIR \"${CMAKE_INSTALL_BINDIR}\")")
install(CODE [[
  if(CMAKE_INSTALL_PREFIX MATCHES "^/usr/?$")
    set(o2c_etc "/etc/o2c")
  else()
    set(o2c_etc "${CMAKE_INSTALL_PREFIX}/etc/o2c")
  endif()
  file(INSTALL "${O2C_SOURCE_DIR}/config/o2c.conf.lua" DESTINATION "${o2c_etc}")
  file(READ "${O2C_SOURCE_DIR}/config/o2c.service" unit)
  string(REPLACE "/usr/bin/o2c" "${CMAKE_INSTALL_PREFIX}/${O2C_BINDIR}/o2c" unit "${unit}")
  file(WRITE "${O2C_UNIT_OUT}" "${unit}")
  file(INSTALL "${O2C_UNIT_OUT}"
       DESTINATION "${CMAKE_INSTALL_PREFIX}/lib/systemd/system")
]])

# `make deb`: CPack's DEB generator over this build tree (no rebuild).  The
# runtime libraries come from dpkg-shlibdeps on the binary; lua-cjson is
# dlopened (not linked), adduser is for postinst (config/deb).
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME o2c)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_VENDOR "o2c")
set(CPACK_PACKAGE_CONTACT "o2c maintainers <o2c@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "Order-to-Cash maturity assessments as code")
set(CPACK_PACKAGE_DESCRIPTION "o2c hosts Order-to-Cash maturity assessments written in Lua: \
a web UI and an HTTP API, answers stored in SQLite, reports written by an LLM.")
# The install scripts see CMAKE_INSTALL_PREFIX=/usr and DESTDIR=the staging
# tree, so /etc/o2c and the unit's ExecStart come out right.
set(CPACK_SET_DESTDIR ON)
set(CPACK_INSTALL_PREFIX /usr)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_STRIP_FILES ON) # the package's binary without debug info
set(CPACK_DEBIAN_PACKAGE_SECTION web)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "lua-cjson, adduser")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "nginx | caddy, sqlite3")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${CMAKE_SOURCE_DIR}/config/deb/postinst ${CMAKE_SOURCE_DIR}/config/deb/prerm
    ${CMAKE_SOURCE_DIR}/config/deb/postrm ${CMAKE_SOURCE_DIR}/config/deb/conffiles)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
# Only this build's install rules: not the sources, not the test trees.
set(CPACK_INSTALL_CMAKE_PROJECTS "${CMAKE_BINARY_DIR};o2c;ALL;/")
include(CPack)
