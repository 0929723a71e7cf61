// Owns describe() (see describe.h): a visitor over fields.h that prints each field briefly.
#include "proto/describe.h"

#include <fmt/format.h>

#include "proto/fields.h"

namespace pcmoe::proto {
namespace {

class Describer {
 public:
  std::string out;

  void str(const char* key, const std::string& s) {
    std::string cut = s.size() > 32 ? s.substr(0, 32) + "..." : s;
    put(key, fmt::format("\"{}\"", cut));
  }
  void boolean(const char* key, bool b) { put(key, b ? "true" : "false"); }
  template <class T>
  void uint(const char* key, const T& x, uint64_t = 0, uint64_t = 0) {
    put(key, std::to_string(x));
  }
  void int64(const char* key, int64_t x, int64_t) { put(key, std::to_string(x)); }
  void real(const char* key, double x, Real) { put(key, fmt::format("{:.6g}", x)); }
  template <class E>
  void enumeration(const char* key, const E& e, uint64_t) {
    put(key, std::to_string(static_cast<uint64_t>(e)));
  }
  template <class T>
  void uints(const char* key, const std::vector<T>& xs, uint64_t = 0) {
    list(key, xs.size());
  }
  template <class T>
  void optional_uint(const char* key, const T& x) {
    if (x != 0) uint(key, x);
  }
  template <class T>
  void optional_uints(const char* key, const std::vector<T>& xs) {
    if (!xs.empty()) list(key, xs.size());
  }
  void optional_str(const char* key, const std::string& s) {
    if (!s.empty()) str(key, s);
  }
  template <class T>
  void uint_matrix(const char* key, const std::vector<std::vector<T>>& xss) {
    matrix(key, xss);
  }
  void real_matrix(const char* key, const std::vector<std::vector<double>>& xss, Real) { matrix(key, xss); }
  void strs(const char* key, const std::vector<std::string>& xs) { list(key, xs.size()); }
  void tensor(const char* key, const WireTensor& t, TensorRole) { put(key, describe_tensor(t)); }
  void tensors(const char* key, const std::vector<WireTensor>& ts, TensorRole) { list(key, ts.size()); }
  template <class E>
  void entries(const char* key, const std::vector<E>& es) {
    list(key, es.size());
  }

 private:
  void put(const char* key, const std::string& v) {
    fmt::format_to(std::back_inserter(out), " {}={}", key, v);
  }
  void list(const char* key, size_t n) { put(key, fmt::format("[{}]", n)); }
  template <class V>
  void matrix(const char* key, const std::vector<std::vector<V>>& xss) {
    put(key, fmt::format("[{}x{}]", xss.size(), xss.empty() ? 0 : xss[0].size()));
  }
};

}  // namespace

std::string describe(const Message& m) {
  Describer d;
  d.out = std::string(msg_type_name(type_of(m)));
  std::visit([&](const auto& x) { fields(d, x, Of<std::decay_t<decltype(x)>>{}); }, m);
  return d.out;
}

}  // namespace pcmoe::proto
