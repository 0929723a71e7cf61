// Owns small deterministic hashing and random-number helpers that must give the same results on
// every machine and compiler (std:: distributions do not): FNV-1a, splitmix64, and an Rng.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

namespace pcmoe {

constexpr uint64_t fnv1a64(std::string_view s, uint64_t h = 14695981039346656037ULL) {
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return h;
}

constexpr uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// Mixes several values into one seed (order matters).
constexpr uint64_t mix_seed(uint64_t a, uint64_t b) {
  return splitmix64(a ^ splitmix64(b + 0x632be59bd9b4e019ULL));
}

// xoshiro256** seeded by splitmix64: fast, portable, reproducible.
class Rng {
 public:
  explicit Rng(uint64_t seed = 0) { reseed(seed); }
  void reseed(uint64_t seed);
  uint64_t next();
  // Uniform in [0, n), unbiased (n > 0).
  uint64_t below(uint64_t n);
  // Uniform double in [0, 1).
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
  // Fisher-Yates shuffle.
  template <class T>
  void shuffle(std::vector<T>& v) {
    for (size_t i = v.size(); i > 1; --i) {
      size_t j = static_cast<size_t>(below(i));
      std::swap(v[i - 1], v[j]);
    }
  }
  // Full state, for checkpoints.
  std::vector<uint64_t> state() const { return {s_[0], s_[1], s_[2], s_[3]}; }
  void set_state(const std::vector<uint64_t>& st);

 private:
  uint64_t s_[4];
};

}  // namespace pcmoe
