// Owns the configuration reference: every key of every binary's configuration (party, hub,
// central/eval) with type, default and meaning, as markdown generated from the loaders' own
// field lists, so the README's table cannot drift (a test compares them).
#pragma once

#include <string>

namespace pcmoe {

std::string config_reference_markdown();

}  // namespace pcmoe
