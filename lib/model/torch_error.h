// Owns the one place where libtorch's errors (c10::Error) are caught: guarded() runs a piece of
// tensor work and turns a libtorch failure into a pcmoe::ModelError with context, flagged when
// the device ran out of memory (STYLE.md: catch c10::Error only in lib/model). Callers outside
// lib/model (the trainers, the expert host) then handle ModelError like any other error.
#pragma once

#include <c10/util/Exception.h>

#include <string>

#include "common/error.h"

namespace pcmoe::model {

// True when the libtorch error is an allocation failure (CUDA or CPU out of memory).
bool is_out_of_memory(const c10::Error& e);

// Throws ModelError("<what>: <libtorch's message without backtrace>", is_out_of_memory(e)).
[[noreturn]] void rethrow_torch_error(const std::string& what, const c10::Error& e);

// Runs f() and returns its result; a c10::Error becomes ModelError (rethrow_torch_error).
template <class F>
decltype(auto) guarded(const std::string& what, F&& f) {
  try {
    return f();
  } catch (const c10::Error& e) {
    rethrow_torch_error(what, e);
  }
}

}  // namespace pcmoe::model
