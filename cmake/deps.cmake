# Every dependency comes from a Debian package. A missing one stops configure
# with the package to install, instead of a link error later.
find_package(PkgConfig)
if(NOT PKG_CONFIG_FOUND)
  message(FATAL_ERROR "pkg-config not found: apt-get install -y pkg-config")
endif()

function(fl_require_pkg target module debpkg)
  pkg_check_modules(${target} QUIET IMPORTED_TARGET ${module})
  if(NOT ${target}_FOUND)
    message(FATAL_ERROR "${module} not found: apt-get install -y ${debpkg}")
  endif()
endfunction()

fl_require_pkg(NL3       libnl-3.0       libnl-3-dev)
fl_require_pkg(NLROUTE3  libnl-route-3.0 libnl-route-3-dev)
fl_require_pkg(NLNF3     libnl-nf-3.0    libnl-nf-3-dev)
fl_require_pkg(NFTABLES  libnftables     libnftables-dev)
fl_require_pkg(MSGPACK   msgpack         libmsgpack-dev)
fl_require_pkg(SECCOMP   libseccomp      libseccomp-dev)
fl_require_pkg(YAML      yaml-0.1        libyaml-dev)
fl_require_pkg(JANSSON   jansson         libjansson-dev)
fl_require_pkg(CURL      libcurl         libcurl4-openssl-dev)
fl_require_pkg(CMOCKA    cmocka          libcmocka-dev)

find_package(nng CONFIG QUIET)
if(NOT nng_FOUND)
  message(FATAL_ERROR "nng not found: apt-get install -y libnng-dev")
endif()
find_package(Threads REQUIRED)

# mbedTLS (the library Debian's nng is built with): faultline's TLS engine
# and `faultline pki`. Debian ships no pkg-config file for 2.28.
find_path(MBEDTLS_INCLUDE_DIR mbedtls/x509_crt.h)
find_library(MBEDTLS_LIB mbedtls)
find_library(MBEDX509_LIB mbedx509)
find_library(MBEDCRYPTO_LIB mbedcrypto)
if(NOT MBEDTLS_INCLUDE_DIR OR NOT MBEDTLS_LIB OR NOT MBEDX509_LIB OR NOT MBEDCRYPTO_LIB)
  message(FATAL_ERROR "mbedTLS not found: apt-get install -y libmbedtls-dev")
endif()
add_library(fl_mbedtls INTERFACE)
target_include_directories(fl_mbedtls INTERFACE ${MBEDTLS_INCLUDE_DIR})
target_link_libraries(fl_mbedtls INTERFACE ${MBEDTLS_LIB} ${MBEDX509_LIB} ${MBEDCRYPTO_LIB})
