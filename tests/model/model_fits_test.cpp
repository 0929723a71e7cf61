// A model whose weights, gradients and optimizer state alone exceed the device is refused before
// anything is allocated (pcmoe-party, pcmoe-central), naming the size keys.
#include <catch2/catch.hpp>

#include "common/model_config.h"
#include "model/footprint.h"

using namespace pcmoe;

TEST_CASE("model fits: absurd sizes are refused before allocation, the presets pass", "[unit][model]") {
  ModelConfig tiny;  // the defaults: the tiny preset's sizes
  CHECK_NOTHROW(model::check_model_fits(tiny, uint64_t{1} << 30, "cpu"));
  CHECK(model::minimum_state_bytes(tiny) < 64.0 * (1 << 20));
  ModelConfig huge = tiny;
  huge.d_model = 65536;
  huge.n_heads = 64;
  CHECK_THROWS_WITH(model::check_model_fits(huge, uint64_t{24} << 30, "cpu"),
                    Catch::Contains("does not fit this machine") && Catch::Contains("model.d_model 65536") &&
                        Catch::Contains("cpu has 24.0 GiB"));
  CHECK_NOTHROW(model::check_model_fits(huge, 0, "cpu"));  // unknown memory: no check
}
