# Builds CO-RE eBPF programs (after libbpf-bootstrap's FindBpfObject.cmake).
#
# vmlinux.h is generated from AUGUR_VMLINUX_BTF into the build tree, never committed.
# bpf_object(<name> <source.bpf.c>) compiles <source> for the BPF target and generates
# <name>.skel.h with `bpftool gen skeleton`; it defines the INTERFACE target <name>_skel that
# puts the skeleton on the include path and links libbpf.

set(AUGUR_BPF_GEN_DIR ${CMAKE_BINARY_DIR}/bpf-gen)
file(MAKE_DIRECTORY ${AUGUR_BPF_GEN_DIR})

if(NOT EXISTS ${AUGUR_VMLINUX_BTF})
  message(FATAL_ERROR "BTF file ${AUGUR_VMLINUX_BTF} not found: vmlinux.h cannot be generated. "
          "Point -DAUGUR_VMLINUX_BTF=<file> at a kernel's BTF (e.g. from another machine).")
endif()

add_custom_command(
  OUTPUT ${AUGUR_BPF_GEN_DIR}/vmlinux.h
  COMMAND ${AUGUR_BPFTOOL} btf dump file ${AUGUR_VMLINUX_BTF} format c > ${AUGUR_BPF_GEN_DIR}/vmlinux.h.tmp
  COMMAND ${CMAKE_COMMAND} -E rename ${AUGUR_BPF_GEN_DIR}/vmlinux.h.tmp ${AUGUR_BPF_GEN_DIR}/vmlinux.h
  DEPENDS ${AUGUR_VMLINUX_BTF}
  COMMENT "Generating vmlinux.h from ${AUGUR_VMLINUX_BTF}"
  VERBATIM)
add_custom_target(augur_vmlinux_h DEPENDS ${AUGUR_BPF_GEN_DIR}/vmlinux.h)

if(CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64|amd64")
  set(AUGUR_BPF_ARCH x86)
elseif(CMAKE_SYSTEM_PROCESSOR MATCHES "aarch64|arm64")
  set(AUGUR_BPF_ARCH arm64)
else()
  set(AUGUR_BPF_ARCH ${CMAKE_SYSTEM_PROCESSOR})
endif()

function(bpf_object name source)
  get_filename_component(src_abs ${source} ABSOLUTE)
  get_filename_component(src_dir ${src_abs} DIRECTORY)
  set(obj ${AUGUR_BPF_GEN_DIR}/${name}.bpf.o)
  set(skel ${AUGUR_BPF_GEN_DIR}/${name}.skel.h)
  file(GLOB bpf_headers ${src_dir}/*.h)
  add_custom_command(
    OUTPUT ${obj}
    COMMAND ${AUGUR_CLANG} -g -O2 -target bpf -D__TARGET_ARCH_${AUGUR_BPF_ARCH}
            -Wall -Wno-unused-function
            -I${AUGUR_BPF_GEN_DIR} -I${src_dir} ${LIBBPF_CFLAGS}
            -c ${src_abs} -o ${obj}
    DEPENDS ${src_abs} ${bpf_headers} ${AUGUR_BPF_GEN_DIR}/vmlinux.h
    COMMENT "Compiling BPF program ${name}"
    VERBATIM)
  add_custom_command(
    OUTPUT ${skel}
    COMMAND ${AUGUR_BPFTOOL} gen skeleton ${obj} name ${name} > ${skel}.tmp
    COMMAND ${CMAKE_COMMAND} -E rename ${skel}.tmp ${skel}
    DEPENDS ${obj}
    COMMENT "Generating BPF skeleton ${name}.skel.h"
    VERBATIM)
  add_custom_target(${name}_skel_gen DEPENDS ${skel})
  # vmlinux.h is made by another directory's rule; order it explicitly.
  add_dependencies(${name}_skel_gen augur_vmlinux_h)
  add_library(${name}_skel INTERFACE)
  add_dependencies(${name}_skel ${name}_skel_gen)
  target_include_directories(${name}_skel INTERFACE ${AUGUR_BPF_GEN_DIR} ${src_dir})
  target_link_libraries(${name}_skel INTERFACE PkgConfig::LIBBPF PkgConfig::LIBELF PkgConfig::ZLIB)
endfunction()
