# Where `cmake --install` puts augur, and the defaults compiled into augurd that must agree
# with it (FHS through GNUInstallDirs). With the Debian prefix /usr:
#   /usr/bin/augurd, /usr/bin/augurctl, /usr/bin/augur-plugin-check
#   /usr/libexec/augur/augur-plugin-host        (started by augurd, not by people)
#   /usr/lib/augur/plugins/augur-<name>.so      (plugins.dir)
#   /etc/augur/augur.yaml                       (the default --config)
#   /var/lib/augur/                             (forecast and plugin state)
#   /usr/lib/systemd/system/augurd.service      (ExecStart names the installed augurd)
#   /usr/share/doc/augur/                       (README.md and docs/)
#   /usr/include/augur/plugin.h                 (for plugin authors)
# The default prefix, /usr/local, moves each of them under /usr/local (etc and var too), and
# the compiled-in defaults move with it.
include(GNUInstallDirs)

# Plugins are architecture-specific but private to augur: /usr/lib/<package> is the Debian
# convention for that (as /usr/lib/systemd is), not the multiarch libdir.
set(AUGUR_INSTALL_PLUGINDIR "lib/augur/plugins" CACHE STRING
    "plugin directory, relative to the prefix")
set(AUGUR_INSTALL_HOSTDIR "${CMAKE_INSTALL_LIBEXECDIR}/augur" CACHE STRING
    "directory of augur-plugin-host, relative to the prefix")
set(AUGUR_INSTALL_UNITDIR "lib/systemd/system" CACHE STRING
    "systemd system unit directory, relative to the prefix")

set(AUGUR_DEFAULT_CONFIG_DIR "${CMAKE_INSTALL_FULL_SYSCONFDIR}/augur")
set(AUGUR_DEFAULT_CONFIG "${AUGUR_DEFAULT_CONFIG_DIR}/augur.yaml")
set(AUGUR_DEFAULT_PLUGIN_DIR "${CMAKE_INSTALL_PREFIX}/${AUGUR_INSTALL_PLUGINDIR}")
set(AUGUR_DEFAULT_PLUGIN_HOST "${CMAKE_INSTALL_PREFIX}/${AUGUR_INSTALL_HOSTDIR}/augur-plugin-host")
set(AUGUR_DEFAULT_STATE_DIR "${CMAKE_INSTALL_FULL_LOCALSTATEDIR}/lib/augur")
set(AUGUR_INSTALLED_AUGURD "${CMAKE_INSTALL_FULL_BINDIR}/augurd")

# A build output, never committed: include "augur_paths.h".
configure_file(${PROJECT_SOURCE_DIR}/cmake/augur_paths.h.in
               ${PROJECT_BINARY_DIR}/generated/augur_paths.h @ONLY)
# The unit and the packaged config name the same paths.
configure_file(${PROJECT_SOURCE_DIR}/packaging/systemd/augurd.service.in
               ${PROJECT_BINARY_DIR}/packaging/augurd.service @ONLY)
configure_file(${PROJECT_SOURCE_DIR}/packaging/augur.yaml.in
               ${PROJECT_BINARY_DIR}/packaging/augur.yaml @ONLY)

install(FILES ${PROJECT_BINARY_DIR}/packaging/augur.yaml
        DESTINATION ${CMAKE_INSTALL_SYSCONFDIR}/augur)
install(FILES ${PROJECT_BINARY_DIR}/packaging/augurd.service DESTINATION ${AUGUR_INSTALL_UNITDIR})
install(FILES ${PROJECT_SOURCE_DIR}/README.md DESTINATION ${CMAKE_INSTALL_DOCDIR})
# docs/man/ is the man pages' source: they are installed built (cmake/AugurMan.cmake).
install(DIRECTORY ${PROJECT_SOURCE_DIR}/docs/ DESTINATION ${CMAKE_INSTALL_DOCDIR}
        FILES_MATCHING PATTERN "*.md" PATTERN "man" EXCLUDE)
install(FILES ${PROJECT_SOURCE_DIR}/include/augur/plugin.h
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/augur)
install(DIRECTORY DESTINATION ${CMAKE_INSTALL_LOCALSTATEDIR}/lib/augur)

# --- Debian packaging (packaging/debian, docs/PACKAGING.md) ------------------------------
# For plugin authors (package augur-plugin-dev): a pkg-config file for the header (no
# library, so arch-independent: share/pkgconfig), and the example backend's source with a
# Makefile that builds and checks it against the installed files alone.
configure_file(${PROJECT_SOURCE_DIR}/packaging/augur-plugin.pc.in
               ${PROJECT_BINARY_DIR}/packaging/augur-plugin.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/packaging/augur-plugin.pc
        DESTINATION ${CMAKE_INSTALL_DATADIR}/pkgconfig)
install(FILES ${PROJECT_SOURCE_DIR}/plugins/example/example.c
              ${PROJECT_SOURCE_DIR}/packaging/plugin-example/Makefile
        DESTINATION ${CMAKE_INSTALL_DATADIR}/augur/plugin-example)
# augurctl's bash completion and ready-made man pages (roff, packaging/man/*.[1-8]) when the
# tree has them; a man page built at build time is installed by the rule that builds it.
if(EXISTS ${PROJECT_SOURCE_DIR}/packaging/completion/augurctl.bash)
  install(FILES ${PROJECT_SOURCE_DIR}/packaging/completion/augurctl.bash
          DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions RENAME augurctl)
endif()
file(GLOB AUGUR_ROFF_MAN_PAGES CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/packaging/man/*.[1-8])
foreach(page ${AUGUR_ROFF_MAN_PAGES})
  string(REGEX REPLACE ".*\\.([1-8])$" "\\1" section ${page})
  install(FILES ${page} DESTINATION ${CMAKE_INSTALL_MANDIR}/man${section})
endforeach()
