// Test helpers for lib/proto (see proto_test_util.h).
#include "proto_test_util.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cstring>

#include "common/hash.h"
#include "proto/fields.h"
#include "proto/wire_tensor.h"
#include "test_util.h"

namespace pcmoe::test {
using namespace proto;

namespace {

// bf16 bit patterns of small exact values (1.0 = 0x3f80, -2.0 = 0xc000, 0.5 = 0x3f00, ...).
WireTensor bf16_rows(int64_t rows, int64_t cols, uint16_t start) {
  std::vector<uint16_t> v(static_cast<size_t>(rows * cols));
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<uint16_t>(start + 0x10 * i);
  return make_tensor(DType::bf16, {rows, cols}, v.data(), v.size() * 2);
}

WireTensor f16_rows(int64_t rows, int64_t cols) {
  std::vector<uint16_t> v(static_cast<size_t>(rows * cols));
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<uint16_t>(0x3c00 + i);  // 1.0 and up
  return make_tensor(DType::f16, {rows, cols}, v.data(), v.size() * 2);
}

// fp8 codes with one fp32 scale per `block` elements of a row (codes count up from `start`).
WireTensor fp8_rows(DType dtype, int64_t rows, int64_t cols, uint32_t block, uint8_t start) {
  std::vector<uint8_t> q(static_cast<size_t>(rows * cols));
  for (size_t i = 0; i < q.size(); ++i) q[i] = static_cast<uint8_t>(start + i);
  std::vector<float> sc(static_cast<size_t>(rows * cols / block));
  for (size_t i = 0; i < sc.size(); ++i) sc[i] = 0.0625f * static_cast<float>(i + 1);
  return wrap_fp8(dtype, {rows, cols}, block, Blob::copy_of(q.data(), q.size()),
                  Blob::copy_of(sc.data(), sc.size() * sizeof(float)));
}

std::vector<PartyEntry> sample_directory() {
  return {{"alice", 0, "tcp://10.0.0.1:7001", "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7", true},
          {"bob", 1, "tcp://10.0.0.2:7001", "", false}};
}

}  // namespace

std::vector<Message> golden_messages() {
  std::vector<Message> out;
  out.push_back(Hello{"alice", 1, 3, "c0ffee0123456789", "tcp://10.0.0.1:7001",
                      "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7", 8ull << 30, 1200});
  out.push_back(
      Welcome{2, "run-42", 3000, 1500, 4, {1, 3}, 4, sample_directory(), {{0, 1, 0, 1}, {1, 0, 1, 0}}, 7});
  out.push_back(Reject{11, "model hash differs"});
  out.push_back(Directory{8, sample_directory()});
  out.push_back(Turn{17, 5, 1504, 4});
  out.push_back(StepReport{17,
                           1505,
                           2.75,
                           0.0125,
                           8192,
                           3e-4,
                           412.5,
                           1u << 20,
                           3u << 20,
                           5ull << 30,
                           {{10, 20, 30, 40}, {25, 25, 25, 25}},
                           {{0.125, 0.25, 0.375, 0.25}, {0.25, 0.25, 0.25, 0.25}},
                           2.5});
  out.push_back(TurnDone{17, 3, false, "peer timeout", "bob"});
  out.push_back(ExpertLoad{1506,
                           {{0.1, 0.2, 0.3, 0.4}, {0.25, 0.25, 0.25, 0.25}},
                           {{0.4, 0.3, 0.2, 0.1}, {0.5, 0, 0.5, 0}},
                           100,
                           {1, 0, 1}});
  out.push_back(Heartbeat{99, 1506, "training"});
  out.push_back(StatusRequest{false});
  PartyStatus ps{"alice",    0,          true, "training", 12.5,
                 1400,       123456789,  2.5,  2.625,      15000.5,
                 3ull << 30, 8ull << 30, 7777, 8888,       "tcp://10.0.0.1:7001"};
  out.push_back(Status{"run-42",
                       "training",
                       1506,
                       3000,
                       "alice",
                       3600.25,
                       {ps},
                       {1, 3},
                       {{0, 1}, {1, 0}},
                       {{0.5, 0.5}, {0.75, 0.25}},
                       {{0.5, 0.5}, {0.625, 0.375}},
                       1400});
  out.push_back(Control{"pause"});
  out.push_back(ControlAck{false, "already paused"});
  out.push_back(CheckpointRequest{1500});
  out.push_back(CheckpointDone{1500, false, "/ckpt/alice-1500.pt", "disk full"});
  out.push_back(SnapshotRequest{12});
  out.push_back(Snapshot{12,
                         1500,
                         {"l1.e0.w1", "l1.e0.w2"},
                         {make_f32({2, 2}, {1.0f, -2.0f, 0.5f, 4.0f}), bf16_rows(1, 3, 0x3f80)}});
  out.push_back(PoolRequest{1000});
  out.push_back(Pool{1400, {"l3.e1.w1"}, {f16_rows(2, 2)}});
  out.push_back(Stop{"finished"});
  out.push_back(Bye{"operator"});
  out.push_back(ErrorMsg{15, "no such request", 32, 77});
  out.push_back(TurnNotice{17, 5, {2}, 1504, 4});  // 1.2: in proto/golden/1.2 only
  out.push_back(ExpertForward{77, "alice", 1505, 3, ExpertMode::eval,
                              make_tensor(DType::i32, {3}, std::vector<int32_t>{1, 3, 1}.data(), 12),
                              bf16_rows(3, 4, 0x3f80)});
  out.push_back(ExpertForwardReply{77, bf16_rows(3, 4, 0x4000)});
  out.push_back(ExpertBackward{77, make_f32({2, 2}, {0.25f, -0.5f, 1.5f, 0.0f})});
  out.push_back(ExpertBackwardReply{77, 0.03125, f16_rows(2, 2)});
  out.push_back(StepEnd{"alice", 1505, 0.5});
  out.push_back(StepEndAck{1505, 2});
  out.push_back(StepAbort{"alice", 1506, "peer bob timed out"});
  out.push_back(StepAbortAck{1506});
  return out;
}

namespace {

class Flattener {
 public:
  std::vector<std::pair<std::string, std::string>> out;
  std::string prefix;

  void str(const char* k, const std::string& s) { put(k, "\"" + s + "\""); }
  void boolean(const char* k, bool b) { put(k, b ? "true" : "false"); }
  template <class T>
  void uint(const char* k, const T& x, uint64_t = 0, uint64_t = 0) {
    put(k, std::to_string(x));
  }
  void int64(const char* k, int64_t x, int64_t) { put(k, std::to_string(x)); }
  void real(const char* k, double x, Real) { put(k, fmt::format("{:a}", x)); }
  template <class E>
  void enumeration(const char* k, const E& e, uint64_t) {
    put(k, std::to_string(static_cast<uint64_t>(e)));
  }
  template <class T>
  void uints(const char* k, const std::vector<T>& xs, uint64_t = 0) {
    std::vector<uint64_t> w(xs.begin(), xs.end());
    put(k, fmt::format("[{}]", fmt::join(w, ",")));
  }
  template <class T>
  void optional_uint(const char* k, const T& x) {
    uint(k, x);
  }
  template <class T>
  void optional_uints(const char* k, const std::vector<T>& xs) {
    uints(k, xs);
  }
  void optional_str(const char* k, const std::string& s) { str(k, s); }
  template <class T>
  void uint_matrix(const char* k, const std::vector<std::vector<T>>& xss) {
    std::string s;
    for (const auto& xs : xss) s += fmt::format("[{}]", fmt::join(xs, ","));
    put(k, s);
  }
  void real_matrix(const char* k, const std::vector<std::vector<double>>& xss, Real) {
    std::string s;
    for (const auto& xs : xss) {
      s += "[";
      for (double x : xs) s += fmt::format("{:a},", x);
      s += "]";
    }
    put(k, s);
  }
  void strs(const char* k, const std::vector<std::string>& xs) {
    put(k, fmt::format("[{}]", fmt::join(xs, "|")));
  }
  void tensor(const char* k, const WireTensor& t, TensorRole) {
    std::string_view bytes(reinterpret_cast<const char*>(t.data.data), t.data.size);
    std::string_view scales(reinterpret_cast<const char*>(t.scales.data), t.scales.size);
    put(k, fmt::format("{} bytes={} fnv={:x} scales={:x}", describe_tensor(t), t.data.size, fnv1a64(bytes),
                       fnv1a64(scales)));
  }
  void tensors(const char* k, const std::vector<WireTensor>& ts, TensorRole role) {
    put(k, std::to_string(ts.size()));
    for (size_t i = 0; i < ts.size(); ++i) tensor(fmt::format("{}[{}]", k, i).c_str(), ts[i], role);
  }
  template <class E>
  void entries(const char* k, const std::vector<E>& es) {
    put(k, std::to_string(es.size()));
    for (size_t i = 0; i < es.size(); ++i) {
      Flattener sub;
      sub.prefix = fmt::format("{}{}[{}].", prefix, k, i);
      fields(sub, es[i], Of<E>{});
      out.insert(out.end(), sub.out.begin(), sub.out.end());
    }
  }

 private:
  void put(const char* k, std::string v) { out.emplace_back(prefix + k, std::move(v)); }
};

}  // namespace

std::vector<std::pair<std::string, Message>> golden_messages_1_1() {
  std::vector<std::pair<std::string, Message>> out;
  auto ids = make_tensor(DType::i16, {3}, std::vector<int16_t>{2, 0, 2}.data(), 6);
  out.emplace_back("expert_forward.fp8", ExpertForward{78, "bob", 1600, 1, ExpertMode::train, ids,
                                                       fp8_rows(DType::f8e4m3, 3, 4, 4, 0x30)});
  out.emplace_back(
      "expert_forward_reply.fp8_timeline",
      ExpertForwardReply{
          78, fp8_rows(DType::f8e4m3, 3, 4, 4, 0xb0), {123456789000, 123456791500, 40, 310, 520, 275, 12}});
  out.emplace_back("expert_backward.fp8", ExpertBackward{78, fp8_rows(DType::f8e5m2, 3, 4, 2, 0x38)});
  out.emplace_back("expert_backward_reply.fp8_timeline",
                   ExpertBackwardReply{78,
                                       0.25,
                                       fp8_rows(DType::f8e5m2, 3, 4, 2, 0x3c),
                                       {123456800000, 123456802000, 35, 300, 900, 260, 10}});
  out.emplace_back("expert_forward_reply.timeline",
                   ExpertForwardReply{79, bf16_rows(2, 4, 0x3f80), {5, 9, 1, 1, 1, 1, 1}});
  return out;
}

std::vector<std::pair<std::string, Message>> golden_messages_1_2() {
  std::vector<std::pair<std::string, Message>> out;
  Hello h{"b", 1, 2, "00112233aabbccdd", "tcp://10.0.0.2:7001", "", 1 << 30, 412};
  h.session = 0x8a3f09c1d2e4b567;
  out.emplace_back("hello.session", h);
  Welcome w;
  w.party_index = 1;
  w.run_id = "20261201T101500Z-77";
  w.total_steps = 600;
  w.step = 412;
  w.moe_layers = {0, 1};
  w.n_experts = 2;
  w.directory = {{"a", 0, "tcp://10.0.0.1:7001", "", true}, {"b", 1, "tcp://10.0.0.2:7001", "", true}};
  w.placement = {{0, 1}, {0, 1}};
  w.directory_epoch = 9;
  w.session = 0x8a3f09c1d2e4b567;
  out.emplace_back("welcome.session", w);
  Welcome wc = std::get<Welcome>(golden_messages()[1]);
  wc.schedule = "concurrent";
  out.emplace_back("welcome.concurrent", wc);
  Pool p{400, {"l3.e1.w1"}, {f16_rows(2, 2)}};
  p.party_steps = {400, 412, 300};
  out.emplace_back("pool.party_steps", p);
  out.emplace_back("round_close", RoundClose{1507});
  out.emplace_back("round_norm", RoundNorm{1507, 0.875, 12});
  out.emplace_back("round_commit", RoundCommit{1507, true, 0.3125});
  out.emplace_back("round_commit.drop", RoundCommit{1508, false, 0.0});
  out.emplace_back("round_commit_ack", RoundCommitAck{1507, 12});
  return out;
}

std::vector<Message> every_type_sample() {
  std::vector<Message> out = golden_messages();
  for (const auto& [stem, m] : golden_messages_1_2()) {
    if (stem.find('.') == std::string::npos) out.push_back(m);  // the new types (not the variants)
  }
  std::stable_sort(out.begin(), out.end(),
                   [](const Message& a, const Message& b) { return type_of(a) < type_of(b); });
  return out;
}

std::vector<std::pair<std::string, std::string>> flatten(const Message& m) {
  Flattener f;
  f.out.emplace_back("type", std::string(msg_type_name(type_of(m))));
  std::visit([&](const auto& x) { fields(f, x, Of<std::decay_t<decltype(x)>>{}); }, m);
  return f.out;
}

std::string message_diff(const Message& a, const Message& b) {
  auto fa = flatten(a), fb = flatten(b);
  for (size_t i = 0; i < fa.size() && i < fb.size(); ++i) {
    if (fa[i] != fb[i])
      return fmt::format("{}: {} vs {}={}", fa[i].first, fa[i].second, fb[i].first, fb[i].second);
  }
  if (fa.size() != fb.size()) return fmt::format("{} fields vs {}", fa.size(), fb.size());
  return "";
}

std::string golden_dir(const std::string& version) { return source_dir() + "/proto/golden/" + version; }

}  // namespace pcmoe::test
