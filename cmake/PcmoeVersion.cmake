# Generates <build>/generated/common/version_info.h at configure time: the project version, the
# source's `git describe` (or "unknown" where there is no git checkout: a source tarball builds the
# same) and the wire protocol version read from lib/proto/messages.h (tests/common/cli_test.cpp
# checks that it matches proto::kProtocolMajor/Minor). With a git checkout, a commit re-runs the
# configure step (it depends on HEAD); without one nothing here needs .git.
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
  # Re-configure when a commit moves HEAD (the file HEAD, and the branch ref it names when that is a
  # file), so the version follows commits; "-dirty" is only refreshed by re-running cmake.
  execute_process(
    COMMAND "${GIT_EXECUTABLE}" rev-parse --git-path HEAD --symbolic-full-name HEAD
    WORKING_DIRECTORY "${PROJECT_SOURCE_DIR}"
    OUTPUT_VARIABLE _pcmoe_git_paths
    OUTPUT_STRIP_TRAILING_WHITESPACE
    ERROR_QUIET)
  string(REPLACE "\n" ";" _pcmoe_git_paths "${_pcmoe_git_paths}")
  list(LENGTH _pcmoe_git_paths _n)
  if(_n EQUAL 2)
    list(GET _pcmoe_git_paths 0 _head)
    list(GET _pcmoe_git_paths 1 _ref)
    execute_process(
      COMMAND "${GIT_EXECUTABLE}" rev-parse --git-path "${_ref}"
      WORKING_DIRECTORY "${PROJECT_SOURCE_DIR}"
      OUTPUT_VARIABLE _ref_file
      OUTPUT_STRIP_TRAILING_WHITESPACE
      ERROR_QUIET)
    foreach(_f "${_head}" "${_ref_file}")
      if(NOT IS_ABSOLUTE "${_f}")
        set(_f "${PROJECT_SOURCE_DIR}/${_f}")
      endif()
      if(EXISTS "${_f}")
        set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS "${_f}")
      endif()
    endforeach()
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
