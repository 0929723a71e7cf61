# Generates <build>/generated/common/version_info.h at configure time: the project version, the
# source's `git describe` (or "unknown" where there is no git checkout: a source tarball builds the
# same) and the wire protocol version read from lib/proto/messages.h (tests/common/version_test.cpp
# checks that it matches proto::kProtocolMajor/Minor). Re-run cmake to refresh the git description;
# the build itself never runs git and never reads .git.
set(PCMOE_GIT_DESCRIBE "unknown")
find_package(Git QUIET)
if(GIT_FOUND AND EXISTS "${PROJECT_SOURCE_DIR}/.git")
  execute_process(
    COMMAND "${GIT_EXECUTABLE}" describe --tags --always --dirty
    WORKING_DIRECTORY "${PROJECT_SOURCE_DIR}"
    OUTPUT_VARIABLE _pcmoe_describe
    OUTPUT_STRIP_TRAILING_WHITESPACE
    ERROR_QUIET
    RESULT_VARIABLE _pcmoe_git_rc)
  if(_pcmoe_git_rc EQUAL 0 AND _pcmoe_describe)
    set(PCMOE_GIT_DESCRIBE "${_pcmoe_describe}")
  endif()
endif()

file(STRINGS "${PROJECT_SOURCE_DIR}/lib/proto/messages.h" _pcmoe_major REGEX "kProtocolMajor = [0-9]+")
file(STRINGS "${PROJECT_SOURCE_DIR}/lib/proto/messages.h" _pcmoe_minor REGEX "kProtocolMinor = [0-9]+")
string(REGEX REPLACE ".*= ([0-9]+).*" "\\1" PCMOE_PROTOCOL_MAJOR "${_pcmoe_major}")
string(REGEX REPLACE ".*= ([0-9]+).*" "\\1" PCMOE_PROTOCOL_MINOR "${_pcmoe_minor}")
if(NOT PCMOE_PROTOCOL_MAJOR MATCHES "^[0-9]+$" OR NOT PCMOE_PROTOCOL_MINOR MATCHES "^[0-9]+$")
  message(FATAL_ERROR "pcmoe: cannot read kProtocolMajor/kProtocolMinor from lib/proto/messages.h")
endif()
# Re-configure when the protocol version changes.
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS "${PROJECT_SOURCE_DIR}/lib/proto/messages.h")

set(PCMOE_GENERATED_DIR "${PROJECT_BINARY_DIR}/generated")
configure_file("${CMAKE_CURRENT_LIST_DIR}/version_info.h.in" "${PCMOE_GENERATED_DIR}/common/version_info.h" @ONLY)
message(STATUS "pcmoe: version ${PROJECT_VERSION} (git ${PCMOE_GIT_DESCRIBE}), protocol ${PCMOE_PROTOCOL_MAJOR}.${PCMOE_PROTOCOL_MINOR}")
