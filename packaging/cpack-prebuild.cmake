# CPACK_PRE_BUILD_SCRIPTS: runs once per generator after CPack staged every
# component under CPACK_TEMPORARY_INSTALL_DIRECTORY/<component>/ and before
# the package is made. The install rules use Debian's layout; an RPM gets
# Fedora's: units in /usr/lib/systemd/system (on Fedora /lib is a symlink
# owned by the filesystem package, so an RPM must not put files "in" it),
# no Debian changelog or lintian overrides (%changelog is in the spec), and
# the state directory listed as %dir 0700 (packaging/CMakeLists.txt).
if(CPACK_GENERATOR STREQUAL "RPM")
  set(root "${CPACK_TEMPORARY_INSTALL_DIRECTORY}")
  foreach(comp agent coordinator)
    if(IS_DIRECTORY "${root}/${comp}/lib/systemd")
      file(MAKE_DIRECTORY "${root}/${comp}/usr/lib")
      file(RENAME "${root}/${comp}/lib/systemd" "${root}/${comp}/usr/lib/systemd")
      file(REMOVE_RECURSE "${root}/${comp}/lib")
    endif()
    file(REMOVE_RECURSE "${root}/${comp}/usr/share/lintian")
    file(GLOB debchangelogs "${root}/${comp}/usr/share/doc/*/changelog.Debian.gz")
    if(debchangelogs)
      file(REMOVE ${debchangelogs})
    endif()
  endforeach()
  file(MAKE_DIRECTORY "${root}/agent/var/lib/faultline")
endif()
