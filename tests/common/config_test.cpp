// Tests of the YAML config machinery: loading, unknown keys, bad values, overrides, includes.
#include <catch2/catch.hpp>

#include "common/config_schema.h"
#include "common/data_config.h"
#include "common/model_config.h"
#include "test_util.h"

using namespace pcmoe;

namespace {
std::string load_error(const std::string& path) {
  Preset p;
  try {
    preset_schema().load_file(path, p);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST_CASE("preset loads and keeps defaults for missing keys", "[unit][config]") {
  test::TempDir dir;
  auto path = dir.write("p.yaml", "model:\n  d_model: 64\n  n_heads: 2\ntrain:\n  lr: 0.01\n");
  Preset p;
  config::Origins origins;
  preset_schema().load_file(path, p, &origins);
  CHECK(p.model.d_model == 64);
  CHECK(p.model.n_heads == 2);
  CHECK(p.model.n_layers == ModelConfig{}.n_layers);
  CHECK(p.train.lr == Approx(0.01));
  CHECK(origins.describe("model.d_model") == path + ":2: key 'model.d_model'");
}

TEST_CASE("unknown keys name file, line, key and a suggestion", "[unit][config]") {
  test::TempDir dir;
  auto path = dir.write("p.yaml", "model:\n  d_modl: 64\n");
  std::string err = load_error(path);
  CHECK(err.find(path + ":2: key 'model.d_modl': unknown key") != std::string::npos);
  CHECK(err.find("did you mean 'model.d_model'") != std::string::npos);
}

TEST_CASE("bad values name expected vs found, all problems at once", "[unit][config]") {
  test::TempDir dir;
  auto path = dir.write("p.yaml", "model:\n  d_model: abc\n  n_layers: -3\n  activation: relu\n");
  std::string err = load_error(path);
  CHECK(err.find(":2: key 'model.d_model': expected int, found 'abc'") != std::string::npos);
  CHECK(err.find(":3: key 'model.n_layers': must be in [1, 1024], found '-3'") != std::string::npos);
  CHECK(err.find(":4: key 'model.activation': must be one of: swiglu, gelu, found 'relu'") !=
        std::string::npos);
}

TEST_CASE("syntax errors and missing files are config errors", "[unit][config]") {
  test::TempDir dir;
  auto path = dir.write("p.yaml", "model: [\n");
  CHECK(load_error(path).find("YAML syntax error") != std::string::npos);
  CHECK(load_error(dir.path() + "/nope.yaml").find("config file not found") != std::string::npos);
}

TEST_CASE("--set overrides parse, check and reject unknown keys", "[unit][config]") {
  Preset p;
  auto s = preset_schema();
  s.apply_override("model.d_model=96", p);
  CHECK(p.model.d_model == 96);
  s.apply_override("model.router.aux_loss_coef=0.5", p);
  CHECK(p.model.router.aux_loss_coef == Approx(0.5));
  CHECK_THROWS_WITH(s.apply_override("model.d_model=x", p), Catch::Contains("expected int, found 'x'"));
  CHECK_THROWS_WITH(s.apply_override("model.nope=1", p), Catch::Contains("unknown key"));
  CHECK_THROWS_WITH(s.apply_override("model.d_model", p), Catch::Contains("expected key=value"));
}

TEST_CASE("cross-field validation names the key", "[unit][config]") {
  Preset p;
  p.model.d_model = 100;
  p.model.n_heads = 3;
  config::Origins o;
  CHECK_THROWS_WITH(validate(p.model, o),
                    Catch::Contains("model.n_heads") && Catch::Contains("not divisible"));
  p.model.n_heads = 4;
  p.model.top_k = 9;
  CHECK_THROWS_WITH(validate(p.model, o), Catch::Contains("top_k 9 exceeds n_experts 8"));
  p.model.top_k = 2;
  p.model.moe_layers = "1,9";
  CHECK_THROWS_WITH(validate(p.model, o), Catch::Contains("moe_layers"));
}

TEST_CASE("moe_layers forms", "[unit][config]") {
  ModelConfig m;
  m.n_layers = 4;
  CHECK(m.moe_layer_indices() == std::vector<int>{0, 1, 2, 3});
  m.moe_layers = "odd";
  CHECK(m.moe_layer_indices() == std::vector<int>{1, 3});
  m.moe_layers = "even";
  CHECK(m.moe_layer_indices() == std::vector<int>{0, 2});
  m.moe_layers = "3, 1";
  CHECK(m.moe_layer_indices() == std::vector<int>{1, 3});
}

TEST_CASE("round trip through --print-config text and the hash", "[unit][config]") {
  Preset p;
  p.model.d_model = 72;
  p.model.n_heads = 6;
  test::TempDir dir;
  auto path = dir.write("dump.yaml", preset_schema().to_yaml(p));
  Preset q;
  preset_schema().load_file(path, q);
  CHECK(q.model.d_model == 72);
  CHECK(model_config_hash(p.model, p.train) == model_config_hash(q.model, q.train));
  q.train.lr *= 2;
  CHECK(model_config_hash(p.model, p.train) != model_config_hash(q.model, q.train));
}

TEST_CASE("list sections load each element with its own schema", "[unit][config]") {
  test::TempDir dir;
  auto path = dir.write("d.yaml",
                        "sources:\n  - path: /tmp\n    format: fortune\n    exclude: ['*.dat']\n  - path: "
                        "/x\n    formt: text\n");
  DataConfig d;
  try {
    data_schema().load_file(path, d);
    FAIL("expected an error");
  } catch (const ConfigError& e) {
    CHECK(std::string(e.what()).find(":6: key 'sources[1].formt': unknown key") != std::string::npos);
  }
  auto ok = dir.write(
      "ok.yaml", "sources:\n  - path: " + dir.path() + "\n    format: fortune\n    exclude: ['*.dat']\n");
  config::Origins o;
  data_schema().load_file(ok, d, &o);
  REQUIRE(d.sources.size() == 1);
  CHECK(d.sources[0].format == "fortune");
  CHECK(d.sources[0].exclude == std::vector<std::string>{"*.dat"});
  validate(d, o, "data");
  d.sources[0].path = "/definitely/missing";
  CHECK_THROWS_WITH(validate(d, o, "data"),
                    Catch::Contains("data.sources[0].path") && Catch::Contains("does not exist"));
}

TEST_CASE("includes load the preset first; the including file wins", "[unit][config]") {
  test::TempDir dir;
  dir.write("models/base.yaml", "model:\n  d_model: 64\n  n_heads: 4\n");
  auto top = dir.write("top.yaml", "preset: models/base.yaml\nmodel:\n  n_heads: 8\n");
  auto schema = preset_schema();
  schema.include_key("preset");
  Preset p;
  schema.load_file(top, p);
  CHECK(p.model.d_model == 64);
  CHECK(p.model.n_heads == 8);
  auto bad = dir.write("bad.yaml", "preset: models/missing.yaml\n");
  CHECK_THROWS_WITH(schema.load_file(bad, p), Catch::Contains("models/missing.yaml: config file not found"));
}

TEST_CASE("--set reaches list elements by index, with the element's checks", "[unit][config]") {
  test::TempDir dir;
  DataConfig d;
  auto s = data_schema();
  s.apply_override("sources[0].path=" + dir.path(), d);  // index == size appends
  REQUIRE(d.sources.size() == 1);
  CHECK(d.sources[0].path == dir.path());
  s.apply_override("sources[0].format=fortune", d);
  CHECK(d.sources[0].format == "fortune");
  CHECK(d.sources[0].path == dir.path());  // other keys of the element kept
  CHECK_THROWS_WITH(s.apply_override("sources[0].format=bogus", d), Catch::Contains("must be one of"));
  CHECK_THROWS_WITH(s.apply_override("sources[3].path=/x", d), Catch::Contains("past the end"));
  CHECK_THROWS_WITH(s.apply_override("sources[x].path=/x", d), Catch::Contains("must be a number"));
  CHECK_THROWS_WITH(s.apply_override("sources[0].nope=1", d), Catch::Contains("unknown key"));
  CHECK_THROWS_WITH(s.apply_override("heldout_permille[0].x=1", d), Catch::Contains("unknown key"));
  // String values are literal: a CURVE key or path may contain YAML's special characters.
  s.apply_override("split_salt=!+X0[V8#c{x}:-%", d);
  CHECK(d.split_salt == "!+X0[V8#c{x}:-%");
  s.apply_override("sources[0].path=/tmp/a b#[1]", d);
  CHECK(d.sources[0].path == "/tmp/a b#[1]");
  // The same through a section prefix (hub.parties[i] in the hub's schema).
  Preset p;
  (void)p;
  struct Outer {
    DataConfig data;
  } o;
  config::Schema<Outer> outer;
  outer.section("data", &Outer::data, data_schema());
  outer.apply_override("data.sources[0].path=[#Zj}%w&+D", o);
  CHECK(o.data.sources[0].path == "[#Zj}%w&+D");
}
