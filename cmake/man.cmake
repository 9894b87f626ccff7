# The man page o2c(1): docs/o2c.1.md (pandoc's Markdown) converted with
# Debian's pandoc into build/o2c.1, built by default when pandoc is found and
# installed to share/man/man1 (tests/build/manpage.sh checks it against
# `o2c help`).
include(GNUInstallDirs)
find_program(O2C_PANDOC pandoc)
set(O2C_MAN_PAGE ${CMAKE_BINARY_DIR}/o2c.1)
if(O2C_PANDOC)
  add_custom_command(
    OUTPUT ${O2C_MAN_PAGE}
    COMMAND ${O2C_PANDOC} -s -t man ${CMAKE_SOURCE_DIR}/docs/o2c.1.md -o ${O2C_MAN_PAGE}
    DEPENDS ${CMAKE_SOURCE_DIR}/docs/o2c.1.md
    COMMENT "Man page o2c.1 from docs/o2c.1.md (pandoc)")
  add_custom_target(man ALL DEPENDS ${O2C_MAN_PAGE})
else()
  message(WARNING "o2c: pandoc not found, the man page build/o2c.1 is not built "
                  "(install the Debian package pandoc: config/install-deps.sh)")
endif()
# OPTIONAL: a build without pandoc installs everything else.
install(FILES ${O2C_MAN_PAGE} DESTINATION ${CMAKE_INSTALL_MANDIR}/man1 OPTIONAL)
