# Man pages: docs/man/<page>.<section>.md -> build/man/<page>.<section> (roff), target `man`.
# The sources are Markdown with @VAR@ paths (the same as packaging/augur.yaml.in), filled in
# for this prefix by configure_file, then turned into roff by go-md2man (Debian package
# go-md2man, in packaging/build-deps.txt). Without go-md2man the rest of the build is
# unaffected and `man` fails saying what to install.
find_program(AUGUR_GO_MD2MAN go-md2man)
file(GLOB AUGUR_MAN_SOURCES CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/docs/man/*.md)
set(AUGUR_MAN_DIR ${PROJECT_BINARY_DIR}/man)
set(AUGUR_MAN_PAGES)
if(AUGUR_GO_MD2MAN)
  foreach(src ${AUGUR_MAN_SOURCES})
    get_filename_component(page ${src} NAME_WLE)  # augurd.8
    string(REGEX MATCH "[0-9]$" section ${page})
    set(md ${AUGUR_MAN_DIR}/src/${page}.md)
    configure_file(${src} ${md} @ONLY)
    add_custom_command(
      OUTPUT ${AUGUR_MAN_DIR}/${page}
      COMMAND ${AUGUR_GO_MD2MAN} -in ${md} -out ${AUGUR_MAN_DIR}/${page}
      DEPENDS ${md} ${src}
      COMMENT "go-md2man ${page}"
      VERBATIM)
    list(APPEND AUGUR_MAN_PAGES ${AUGUR_MAN_DIR}/${page})
    install(FILES ${AUGUR_MAN_DIR}/${page} DESTINATION ${CMAKE_INSTALL_MANDIR}/man${section})
  endforeach()
  add_custom_target(man ALL DEPENDS ${AUGUR_MAN_PAGES})
else()
  message(STATUS "go-md2man not found: no man pages (apt-get install go-md2man)")
  add_custom_target(man
    COMMAND ${CMAKE_COMMAND} -E echo "man pages need go-md2man: apt-get install go-md2man"
    COMMAND false
    VERBATIM)
endif()
