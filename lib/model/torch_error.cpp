// libtorch errors as ModelError (see torch_error.h).
#include "model/torch_error.h"

namespace pcmoe::model {

bool is_out_of_memory(const c10::Error& e) {
  const std::string what = e.what_without_backtrace();
  return what.find("out of memory") != std::string::npos || what.find("Out of memory") != std::string::npos;
}

void rethrow_torch_error(const std::string& what, const c10::Error& e) {
  throw ModelError(what + ": " + e.what_without_backtrace(), is_out_of_memory(e));
}

}  // namespace pcmoe::model
