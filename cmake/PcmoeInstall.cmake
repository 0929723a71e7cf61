# Install rules and the Debian packages (CPack DEB, one package per component):
#   pcmoe-common  pcmoe-ctl (status, control, keygen), the example configs, the docs, the pcmoe user
#   pcmoe-hub     pcmoe-hub and pcmoe-hub.service (no libtorch)                depends: pcmoe-common
#   pcmoe-party   pcmoe-party, pcmoe-eval, pcmoe-central, pcmoe-attack, pcmoe-party@.service depends: pcmoe-common
# Build them with `cmake --build --preset default --target package` (into build/packages/);
# scripts/deb-check.sh installs them in a fresh Debian 12 container. `cmake --install build`
# installs the same files under CMAKE_INSTALL_PREFIX (default /usr/local).
# Shared-library dependencies come from dpkg-shlibdeps, so the hub package pulls ZeroMQ, yaml-cpp,
# fmt and cpp-httplib but not libtorch.
if(NOT EXISTS ${PROJECT_SOURCE_DIR}/packaging)  # a source subset (docker/Dockerfile's builder stage)
  return()
endif()
include(GNUInstallDirs)

install(TARGETS pcmoe-ctl RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT common)
# configs/keys/ holds this checkout's own key pairs (pcmoe-ctl keygen --dir configs/keys): never packaged.
install(DIRECTORY ${PROJECT_SOURCE_DIR}/configs/ DESTINATION ${CMAKE_INSTALL_DATADIR}/pcmoe/configs COMPONENT common
        PATTERN keys EXCLUDE)
install(FILES ${PROJECT_SOURCE_DIR}/README.md ${PROJECT_SOURCE_DIR}/docs/DESIGN.md ${PROJECT_SOURCE_DIR}/proto/PROTOCOL.md
        DESTINATION ${CMAKE_INSTALL_DOCDIR} COMPONENT common)
install(TARGETS pcmoe-hub RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT hub)
install(TARGETS pcmoe-party pcmoe-eval pcmoe-central pcmoe-attack RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT party)

# The units name the binaries by their installed path, known only at install time (CPack installs
# under /usr, `cmake --install` under CMAKE_INSTALL_PREFIX): generated then.
function(pcmoe_install_unit unit component)
  set(src ${PROJECT_SOURCE_DIR}/packaging/systemd/${unit}.in)
  install(CODE "
    set(PCMOE_BIN_DIR \"\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_BINDIR}\")
    set(PCMOE_SHARE_DIR \"\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_DATADIR}/pcmoe\")
    set(PCMOE_DOC_DIR \"\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_DOCDIR}\")
    set(_dest \"\$ENV{DESTDIR}\${CMAKE_INSTALL_PREFIX}/lib/systemd/system/${unit}\")
    message(STATUS \"Installing: \${_dest}\")
    configure_file(\"${src}\" \"\${_dest}\" @ONLY)
  " COMPONENT ${component})
endfunction()
pcmoe_install_unit(pcmoe-hub.service hub)
pcmoe_install_unit(pcmoe-party@.service party)

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME pcmoe)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "pcmoe maintainers <pcmoe@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "privacy-preserving collaborative training of Mixture-of-Experts language models")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_OUTPUT_FILE_PREFIX ${PROJECT_BINARY_DIR}/packages)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL common hub party)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_RELEASE 1)
set(CPACK_DEBIAN_PACKAGE_SECTION science)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_ENABLE_COMPONENT_DEPENDS ON)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_COMPONENT_HUB_DEPENDS common)
set(CPACK_COMPONENT_PARTY_DEPENDS common)
set(CPACK_DEBIAN_COMMON_PACKAGE_NAME pcmoe-common)
set(CPACK_DEBIAN_HUB_PACKAGE_NAME pcmoe-hub)
set(CPACK_DEBIAN_PARTY_PACKAGE_NAME pcmoe-party)
set(CPACK_COMPONENT_COMMON_DESCRIPTION "pcmoe: pcmoe-ctl (status, control, CURVE keys), example configs, docs")
set(CPACK_COMPONENT_HUB_DESCRIPTION "pcmoe: the hub of a federation (pcmoe-hub) and its systemd unit")
set(CPACK_COMPONENT_PARTY_DESCRIPTION "pcmoe: one party of a federation (pcmoe-party, pcmoe-eval, pcmoe-central, pcmoe-attack) and its systemd unit")
set(CPACK_DEBIAN_COMMON_PACKAGE_CONTROL_EXTRA ${PROJECT_SOURCE_DIR}/packaging/deb/common/postinst)
set(CPACK_DEBIAN_HUB_PACKAGE_CONTROL_EXTRA
    "${PROJECT_SOURCE_DIR}/packaging/deb/service/postinst;${PROJECT_SOURCE_DIR}/packaging/deb/service/postrm")
set(CPACK_DEBIAN_PARTY_PACKAGE_CONTROL_EXTRA ${CPACK_DEBIAN_HUB_PACKAGE_CONTROL_EXTRA})
include(CPack)
