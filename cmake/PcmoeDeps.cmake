# Finds pcmoe's dependencies. Everything comes from Debian 12's apt (see scripts/setup.sh) or, on the
# GPU machine, from a prefix carried by scripts/gpu-deps.sh and named in CMAKE_PREFIX_PATH.
# Each dependency becomes one imported target named pcmoe::<dep>.

find_package(Threads REQUIRED)
find_package(fmt REQUIRED)
# The pip PyTorch bundles its own (newer) fmt headers in its include directory, which shadow the
# system's in torch translation units: there, build fmt header-only so nothing links against a
# different fmt version (scripts/gpu-run.sh turns this on).
option(PCMOE_FMT_HEADER_ONLY "Use fmt header-only" OFF)
add_library(pcmoe_fmt INTERFACE)
if(PCMOE_FMT_HEADER_ONLY)
  target_link_libraries(pcmoe_fmt INTERFACE fmt::fmt-header-only)
  add_compile_definitions(FMT_HEADER_ONLY=1)
else()
  target_link_libraries(pcmoe_fmt INTERFACE fmt::fmt)
endif()
add_library(pcmoe::fmt ALIAS pcmoe_fmt)
find_package(yaml-cpp REQUIRED)
find_package(ZLIB REQUIRED)

# ZeroMQ and cppzmq: plain header/library lookup, so a carried prefix works without pkg-config.
find_path(PCMOE_ZMQ_INCLUDE zmq.h REQUIRED)
find_path(PCMOE_CPPZMQ_INCLUDE zmq.hpp REQUIRED)
find_library(PCMOE_ZMQ_LIBRARY NAMES zmq libzmq.so.5 REQUIRED)
add_library(pcmoe_zmq INTERFACE)
target_include_directories(pcmoe_zmq SYSTEM INTERFACE ${PCMOE_ZMQ_INCLUDE} ${PCMOE_CPPZMQ_INCLUDE})
target_link_libraries(pcmoe_zmq INTERFACE ${PCMOE_ZMQ_LIBRARY})
add_library(pcmoe::zmq ALIAS pcmoe_zmq)

# msgpack-c (C++ part) is header-only; we build it without Boost.
find_path(PCMOE_MSGPACK_INCLUDE msgpack.hpp REQUIRED)
add_library(pcmoe_msgpack INTERFACE)
target_include_directories(pcmoe_msgpack SYSTEM INTERFACE ${PCMOE_MSGPACK_INCLUDE})
add_library(pcmoe::msgpack ALIAS pcmoe_msgpack)

if(TARGET yaml-cpp::yaml-cpp)
  add_library(pcmoe::yaml ALIAS yaml-cpp::yaml-cpp)
else()
  add_library(pcmoe::yaml ALIAS yaml-cpp)
endif()

# cpp-httplib (Debian's libcpp-httplib-dev: a shared library; its pkg-config file carries the
# CPPHTTPLIB_*_SUPPORT defines that its ABI needs): the hub's read-only status page and /metrics
# (hub.http). Only lib/hub links it. PCMOE_HTTP=OFF builds a hub that refuses hub.http.
option(PCMOE_HTTP "Build the hub's HTTP status page and /metrics (needs cpp-httplib)" ON)
if(PCMOE_HTTP)
  find_package(PkgConfig QUIET)
  if(PkgConfig_FOUND)
    pkg_check_modules(PCMOE_HTTPLIB QUIET IMPORTED_TARGET cpp-httplib)
  endif()
  if(NOT PCMOE_HTTPLIB_FOUND)
    message(FATAL_ERROR "pcmoe: cpp-httplib not found (apt-get install libcpp-httplib-dev pkg-config; "
                        "scripts/setup.sh does), or configure with -DPCMOE_HTTP=OFF")
  endif()
  add_library(pcmoe::httplib ALIAS PkgConfig::PCMOE_HTTPLIB)
endif()

# libtorch: only lib/model, lib/party and the apps that need them link it.
find_package(Torch REQUIRED)
# Global (not per target) so that every target matches the shared precompiled header.
if(TORCH_CUDA_LIBRARIES OR CUDA_FOUND)
  add_compile_definitions(PCMOE_WITH_CUDA)
  message(STATUS "pcmoe: libtorch with CUDA")
  # The fp8 wire kernels (lib/model/fp8_kernels.cu): built where a CUDA compiler is found; without
  # one the fp8 wire runs as libtorch operations (the same results, more launches).
  option(PCMOE_FP8_KERNELS "Build the CUDA kernels of the fp8 wire (needs nvcc)" ON)
  if(PCMOE_FP8_KERNELS)
    include(CheckLanguage)
    check_language(CUDA)
    if(CMAKE_CUDA_COMPILER)
      enable_language(CUDA)
      set(PCMOE_WITH_FP8_KERNELS ON)
      add_compile_definitions(PCMOE_WITH_FP8_KERNELS)
      message(STATUS "pcmoe: fp8 wire kernels with ${CMAKE_CUDA_COMPILER}")
    else()
      message(STATUS "pcmoe: no CUDA compiler: the fp8 wire runs as libtorch operations")
    endif()
  endif()
endif()
add_library(pcmoe_torch INTERFACE)
target_link_libraries(pcmoe_torch INTERFACE ${TORCH_LIBRARIES})
add_library(pcmoe::torch ALIAS pcmoe_torch)
if(TORCH_CXX_FLAGS)
  separate_arguments(_pcmoe_torch_flags UNIX_COMMAND "${TORCH_CXX_FLAGS}")
  target_compile_options(pcmoe_torch INTERFACE ${_pcmoe_torch_flags})
endif()

if(PCMOE_BUILD_TESTS)
  find_package(Catch2 2 REQUIRED)
  include(Catch)
endif()

# One precompiled <torch/torch.h>, built once and shared (REUSE_FROM) by every torch target: a
# PUBLIC PCH would be rebuilt per target at ~0.5 GB each.
add_library(pcmoe_torch_pch STATIC ${CMAKE_CURRENT_LIST_DIR}/torch_pch.cpp)
target_link_libraries(pcmoe_torch_pch PUBLIC pcmoe::torch pcmoe_warnings)
if(PCMOE_PCH)
  target_precompile_headers(pcmoe_torch_pch PRIVATE <torch/torch.h>)
endif()

# pcmoe_use_torch(target): link libtorch and share the precompiled header.
function(pcmoe_use_torch target)
  target_link_libraries(${target} PUBLIC pcmoe::torch)
  if(PCMOE_PCH)
    target_precompile_headers(${target} REUSE_FROM pcmoe_torch_pch)
  endif()
endfunction()
