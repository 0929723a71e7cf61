// Absurd input is refused at load, naming file, line and key: non-finite floats (.inf, .nan) in
// any float key, learning rates outside (0, 1], sizes past their bounds, and a key given twice in
// one YAML map (YAML itself would let the last one win silently).
#include <catch2/catch.hpp>

#include "common/hub_config.h"
#include "common/model_config.h"
#include "test_util.h"

using namespace pcmoe;

namespace {

Preset load(const std::string& path, const std::vector<std::string>& sets = {}) {
  Preset p;
  config::Origins o;
  auto schema = preset_schema();
  schema.load_file(path, p, &o);
  for (const auto& s : sets) schema.apply_override(s, p, &o);
  return p;
}

}  // namespace

TEST_CASE("input: non-finite floats are refused in files and --set", "[unit][config]") {
  test::TempDir dir;
  const std::string ok = dir.write("p.yaml", "train:\n  lr: 0.003\n");
  CHECK_THROWS_WITH(
      load(ok, {"train.lr=.inf"}),
      Catch::Contains("--set: key 'train.lr'") && Catch::Contains("expected a finite float, found '.inf'"));
  CHECK_THROWS_WITH(load(ok, {"train.lr=.nan"}), Catch::Contains("finite float"));
  CHECK_THROWS_WITH(load(ok, {"model.router.aux_loss_coef=-.inf"}),
                    Catch::Contains("model.router.aux_loss_coef"));
  const std::string inf = dir.write("inf.yaml", "train:\n  grad_clip: .Inf\n");
  CHECK_THROWS_WITH(load(inf),
                    Catch::Contains("inf.yaml:2: key 'train.grad_clip'") && Catch::Contains("finite"));
}

TEST_CASE("input: learning rates and sizes outside their ranges are refused", "[unit][config]") {
  test::TempDir dir;
  const std::string ok = dir.write("p.yaml", "train:\n  lr: 0.003\n");
  CHECK(load(ok, {"train.lr=1"}).train.lr == 1.0);
  CHECK_THROWS_WITH(load(ok, {"train.lr=1.5"}), Catch::Contains("must be in (0, 1]"));
  CHECK_THROWS_WITH(load(ok, {"train.lr=0"}), Catch::Contains("must be in (0, 1]"));
  CHECK_THROWS_WITH(load(ok, {"model.d_model=1048576"}),
                    Catch::Contains("model.d_model") && Catch::Contains("must be in [1, 65536]"));
  CHECK_THROWS_WITH(load(ok, {"model.d_ff=2000000000"}), Catch::Contains("model.d_ff"));
  CHECK_THROWS_WITH(load(ok, {"train.batch_size=100000000"}), Catch::Contains("train.batch_size"));
}

TEST_CASE("input: a key given twice in one map is refused, naming both lines", "[unit][config]") {
  test::TempDir dir;
  const std::string twice = dir.write("twice.yaml", "train:\n  lr: 0.003\n  steps: 10\n  lr: 0.5\n");
  CHECK_THROWS_WITH(load(twice), Catch::Contains("twice.yaml:4: key 'train.lr'") &&
                                     Catch::Contains("given twice in one map (also on line 2)"));
  const std::string sections = dir.write("sections.yaml", "train:\n  lr: 0.003\ntrain:\n  steps: 10\n");
  CHECK_THROWS_WITH(load(sections),
                    Catch::Contains("sections.yaml:3: key 'train'") && Catch::Contains("twice"));
  // The same key in two different maps is fine.
  const std::string hub =
      dir.write("hub.yaml", "hub:\n  insecure: true\n  parties:\n    - id: a\n    - id: b\n");
  CHECK(load_hub_config(hub, {}).hub.parties.size() == 2);
}
