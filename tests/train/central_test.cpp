// pcmoe-central's training loop as a library: checkpoints round-trip exactly, a resumed run
// reproduces the uninterrupted run's losses bit for bit (and pcmoe-eval's job reads its exported
// model back), and short real training lowers the held-out loss.
#include <catch2/catch.hpp>

#include <fstream>
#include <sstream>

#include "common/fs.h"
#include "common/run_config.h"
#include "model/tensor_io.h"
#include "test_util.h"
#include "train/central.h"
#include "train/checkpoint.h"
#include "train/eval_file.h"

using namespace pcmoe;

namespace {

// A corpus of distinctive, learnable documents (repeated phrases with counters).
void write_corpus(const test::TempDir& dir) {
  std::string text;
  for (int i = 0; i < 400; ++i) {
    text += "the quick brown fox " + std::to_string(i % 17) + " jumps over the lazy dog number " +
            std::to_string(i % 5) + ".\n%\n";
  }
  dir.write("corpus/fortunes", text);
}

CentralConfig small_config(const test::TempDir& dir, const std::string& out) {
  CentralConfig c;
  c.model.seq_len = 32;
  c.model.d_model = 32;
  c.model.n_layers = 2;
  c.model.n_heads = 2;
  c.model.d_ff = 32;
  c.model.n_experts = 4;
  c.model.top_k = 2;
  c.train.steps = 8;
  c.train.batch_size = 4;
  c.train.warmup_steps = 2;
  c.train.eval_every = 0;
  c.train.eval_batches = 2;
  c.train.lr = 3e-3;
  DataSource src;
  src.path = dir.path() + "/corpus";
  src.format = "fortune";
  c.data.sources = {src};
  c.data.heldout_permille = 100;
  c.run.out_dir = dir.path() + "/" + out;
  c.run.threads = 1;
  c.run.log_level = "error";
  c.run.progress = "off";
  return c;
}

std::vector<std::string> loss_lines(const std::string& metrics) {
  std::ifstream in(metrics);
  std::vector<std::string> out;
  std::string line;
  while (std::getline(in, line)) {
    auto a = line.find("\"loss\":");
    auto b = line.find(',', a);
    out.push_back(line.substr(0, line.find(',')) + " " + line.substr(a, b - a));
  }
  return out;
}

}  // namespace

TEST_CASE("tensor files round-trip exactly and reject corruption", "[unit][train]") {
  test::TempDir dir;
  TensorFile f;
  f.meta["step"] = "12";
  f.tensors.push_back(model::to_raw("a", torch::randn({3, 5})));
  f.tensors.push_back(model::to_raw("b", torch::arange(7, torch::kLong)));
  f.tensors.push_back(model::to_raw("c", torch::randn({2, 2}).to(torch::kBFloat16)));
  const std::string path = dir.path() + "/t.pcmoe";
  write_tensor_file(path, f);
  auto g = read_tensor_file(path);
  CHECK(g.meta.at("step") == "12");
  REQUIRE(g.tensors.size() == 3);
  for (size_t i = 0; i < 3; ++i) {
    CHECK(g.tensors[i].name == f.tensors[i].name);
    CHECK(g.tensors[i].bytes == f.tensors[i].bytes);
    CHECK(g.tensors[i].shape == f.tensors[i].shape);
  }
  std::string bytes = fs::read_file(path);
  std::string flipped = bytes;
  flipped[bytes.size() / 2] ^= 0x40;
  CHECK_THROWS_AS(decode_tensor_file(flipped, "x"), DataError);
  CHECK_THROWS_AS(decode_tensor_file(bytes.substr(0, bytes.size() - 9), "x"), DataError);
  CHECK_THROWS_AS(decode_tensor_file("PCMOETF1garbage", "x"), DataError);
}

TEST_CASE("resume from a checkpoint reproduces the uninterrupted run exactly", "[integration][train]") {
  test::TempDir dir;
  write_corpus(dir);
  auto full = small_config(dir, "full");
  auto s_full = train::run_central(full);
  CHECK(s_full.steps_done == 8);

  auto part = small_config(dir, "part");
  part.run.stop_at_step = 4;
  auto s1 = train::run_central(part);
  CHECK(s1.steps_done == 4);
  part.run.stop_at_step = 0;
  auto s2 = train::run_central(part);  // resumes from part/checkpoint.pcmoe
  CHECK(s2.steps_done == 8);
  auto a = loss_lines(full.run.out_dir + "/metrics.jsonl");
  auto b = loss_lines(part.run.out_dir + "/metrics.jsonl");
  REQUIRE(a.size() == 8);
  REQUIRE(b.size() == 8);
  CHECK(a == b);  // every step's loss, bit for bit (printed with full precision)
  CHECK(s2.eval_loss == s_full.eval_loss);
  // pcmoe-eval's job reads the exported model back and finds the same held-out loss.
  const std::string ev =
      train::evaluate_model_file(full, full.run.out_dir + "/model.pcmoe", full.train.eval_batches).str();
  CHECK_THAT(ev,
             Catch::Contains("\"loss\":" + json_number(s_full.eval_loss)) && Catch::Contains("\"step\":8"));

  // The checkpoints of both runs hold identical tensors.
  auto ca = read_tensor_file(full.run.out_dir + "/checkpoint.pcmoe");
  auto cb = read_tensor_file(part.run.out_dir + "/checkpoint.pcmoe");
  REQUIRE(ca.tensors.size() == cb.tensors.size());
  for (size_t i = 0; i < ca.tensors.size(); ++i) {
    INFO(ca.tensors[i].name);
    CHECK(ca.tensors[i].bytes == cb.tensors[i].bytes);
  }
  // A checkpoint made for another model is refused with the differing key.
  auto other = small_config(dir, "full");
  other.model.d_model = 48;
  CHECK_THROWS_WITH(train::load_checkpoint(full.run.out_dir + "/checkpoint.pcmoe", other.model),
                    Catch::Contains("d_model"));
}

TEST_CASE("a short training run on real text lowers the held-out loss", "[integration][train]") {
  test::TempDir dir;
  if (!fs::is_dir("/usr/share/games/fortunes")) {
    WARN("English fortunes not installed (scripts/setup.sh); using a synthetic corpus");
    write_corpus(dir);
  }
  auto c = small_config(dir, "run");
  if (fs::is_dir("/usr/share/games/fortunes")) {
    c.data.sources[0].path = "/usr/share/games/fortunes";
    c.data.sources[0].exclude = {"*.dat", "*.u8"};
    c.data.sources[0].recursive = false;
    c.data.heldout_permille = 50;
  }
  c.train.steps = 60;
  c.train.warmup_steps = 5;
  c.train.batch_size = 8;
  c.run.threads = 0;
  auto before = c;
  before.train.steps = 1;
  before.train.warmup_steps = 0;
  before.run.out_dir = dir.path() + "/before";
  auto s0 = train::run_central(before);
  auto s = train::run_central(c);
  INFO("held-out loss after 1 step " << s0.eval_loss << ", after 60 steps " << s.eval_loss);
  CHECK(s.eval_loss < s0.eval_loss - 0.5);
  CHECK(s.eval_bpb > 0);
}

TEST_CASE("mode mix takes its party configs' data without needing their keys", "[unit][train]") {
  test::TempDir dir;
  write_corpus(dir);
  // A party config as shipped: CURVE on by default, its key file not there (mode mix reads only
  // its data; it failed with "CURVE is on by default and needs this party's key pair file").
  dir.write("party-a.yaml", "party: {id: a}\ndata:\n  sources:\n    - {path: " + dir.path() +
                                "/corpus, format: fortune}\n  heldout_permille: 100\n");
  CentralConfig c = small_config(dir, "mix");
  c.mode = "mix";
  c.protocol.party_configs = {dir.path() + "/party-a.yaml"};
  c.train.steps = 2;
  CHECK(train::run_central(c).steps_done == 2);
}
